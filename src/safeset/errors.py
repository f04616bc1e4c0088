"""The one exception type for problems a user can cause and fix.

The CLI prints a SafesetError as a single line and exits non-zero; anything else is a bug and
keeps its traceback.
"""


class SafesetError(Exception):
    """A user-fixable problem: bad path, malformed hash list, wrong column, refused output."""
