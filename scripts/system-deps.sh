#!/usr/bin/env bash
# System packages the test suite uses: liblo-tools (oscsend/oscdump, an independent OSC client).
# Installs them with apt-get when missing and we are root; otherwise says what to install.
set -uo pipefail
need=()
command -v oscsend >/dev/null 2>&1 || need+=(liblo-tools)
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
