"""The one exception type the book's helpers raise for problems a user can fix, and the rule behind it.

The rule: the package never deletes or overwrites a file it did not create,
and every error a user can cause is one line that says what is wrong and what
to do. The ``alexnet-tut`` command prints such an error as
``error: <message>`` and exits with status 2 (the status ``argparse`` uses
for usage errors). Any other exception is a bug: the command prints its
traceback and a line asking for a report (`BUG_REPORT`), and exits with 1.
"""

from __future__ import annotations

#: Where bugs are reported; the command's last line after a traceback names it.
ISSUES_URL = "https://github.com/alexnet-tut/alexnet-tut/issues"
BUG_REPORT = (f"this is a bug in alexnet-tut, not something you did: please report it at {ISSUES_URL} "
              "with the command and the traceback above")


class AlexnetTutError(Exception):
    """A problem with the user's input or environment, not a bug.

    The message is one line that says what is wrong and what to do about it.
    The ``alexnet-tut`` command prints it as ``error: <message>`` and exits
    with status 2, without a traceback.
    """


def one_line(error: BaseException | str) -> str:
    """An exception's message (or any text) on one line, whitespace runs collapsed to one space.

    Libraries word their errors over several lines (``tarfile``, ``h5py``,
    ``torch.load``); a message built from theirs must still be one line.
    """
    return " ".join(str(error).split()) or type(error).__name__
