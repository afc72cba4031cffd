"""The one exception type the book's helpers raise for problems a user can fix."""


class AlexnetTutError(Exception):
    """A problem with the user's input or environment, not a bug.

    The message is one line that says what is wrong and what to do about it.
    The ``alexnet-tut`` command prints it as ``error: <message>`` and exits
    with status 2, without a traceback.
    """
