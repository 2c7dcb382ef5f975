#!/usr/bin/env bash
# System packages the test suite uses: liblo-tools (oscsend/oscdump, an independent OSC client), and for
# segue data synth fluidsynth, fluid-soundfont-gm (FluidR3_GM.sf2, MIT) and espeak-ng (the sung words).
# Installs them with apt-get when missing and we are root; otherwise says what to install.
set -uo pipefail
need=()
command -v oscsend >/dev/null 2>&1 || need+=(liblo-tools)
command -v fluidsynth >/dev/null 2>&1 || need+=(fluidsynth)
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need+=(fluid-soundfont-gm)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: ${need[*]}" >&2
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >/dev/null 2>&1; then
        echo "warning: could not install ${need[*]}; tests that need them will be skipped" >&2
    fi
else
    echo "warning: please install ${need[*]} (Debian/Ubuntu: sudo apt-get install ${need[*]}); tests that need them will be skipped" >&2
fi
exit 0
