"""The error family the CLI prints as one line. Anything else is a bug and keeps its traceback."""


class EdgezooError(Exception):
    """A problem with the user's input or environment, explained in one line with its fix."""


class BadInput(EdgezooError):
    """An argument, file or path the user gave cannot be used."""


class CheckFailed(EdgezooError):
    """An artifact was produced but did not pass its check against torch."""
