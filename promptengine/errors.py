"""User-facing errors: one line naming the problem and the fix, non-zero exit."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad path, bad config, bad flag).

    ``train.py`` prints ``error: <message>`` on one line and exits with status 2, without a traceback.
    The message must name the problem and the fix.
    """

    exit_code = 2

    def __init__(self, message: str) -> None:
        text = str(message)
        if "Original Traceback" in text and "Error: " in text:  # re-raised from a DataLoader worker
            text = text.rsplit("Error: ", 1)[1]
        super().__init__(" ".join(text.split()))
