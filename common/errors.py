"""User-facing errors.

Every error a user can cause (bad file, bad option, bad checkpoint) is a ``SegueError`` whose message
names the thing and the problem in words a musician understands. The command line prints these
without a traceback; the daemon turns them into protocol errors with ``code``.
"""

from __future__ import annotations


class SegueError(Exception):
    """Base class of errors caused by user input. ``code`` is a stable machine-readable name."""

    code = "error"


class AudioError(SegueError):
    """An audio file could not be read or written (missing, not audio, truncated, silent, NaN...)."""

    code = "bad_audio"


class ConfigError(SegueError):
    """A configuration or hyper-parameter set is invalid."""

    code = "bad_config"


class CheckpointError(SegueError):
    """A checkpoint or model directory is missing, corrupt, untrusted or does not fit the model."""

    code = "bad_checkpoint"


class CodesError(SegueError):
    """A codes file is missing, corrupt or does not fit the model."""

    code = "bad_codes"


class InputError(SegueError):
    """A request or option is out of range (lengths, levels, artists...); the message gives the allowed range."""

    code = "bad_input"


class Cancelled(SegueError):
    """Work was cancelled through a cancellation token."""

    code = "cancelled"
