"""Errors the CLI turns into one readable line and an exit code, never a traceback."""


class LipError(Exception):
    """Bad input or usage: the user can fix it (exit code 2). The message says what and how."""

    exit_code = 2


class LipRuntimeError(LipError):
    """A run failed after starting, e.g. divergence that recovery could not save (exit code 1)."""

    exit_code = 1
