"""User-facing errors: one line naming the problem and the fix, non-zero exit."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad path, bad config, bad flag).

    ``train.py`` prints ``error: <message>`` on one line and exits with status 2, without a traceback.
    The message must name the problem and the fix.
    """

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
