"""The one exception type for problems a user can cause and fix.

The CLI prints a SafesetError as a single line and exits non-zero; anything else is a bug and
keeps its traceback.
"""


class SafesetError(Exception):
    """A user-fixable problem: bad path, malformed hash list, wrong column, refused output."""


# A day: beyond any sane timeout, and far inside what sockets and timers accept.
MAX_SECONDS = 86_400.0


def check_seconds(flag: str, value: float) -> None:
    """A duration given on the command line or to the API: a number of seconds in
    (0, MAX_SECONDS]; nan, inf and 1e300 would disable or overflow the timers they set."""
    if not 0 < value <= MAX_SECONDS:  # false for nan too
        raise SafesetError(
            f"{flag} {value:g} must be more than 0 seconds and at most {MAX_SECONDS:g} "
            "(a finite number)"
        )
