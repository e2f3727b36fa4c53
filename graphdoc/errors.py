"""Errors that reach the user as one sentence and exit code 2."""


class GraphdocError(Exception):
    """A problem with the user's input or request, explained in one sentence (exit code 2).

    `detail` is what the sentence was made from (TensorFlow's whole message), shown under --debug.
    """

    def __init__(self, message: str, *, detail: str | None = None):
        super().__init__(message)
        self.detail = detail


class LoadError(GraphdocError):
    """The model file could not be read as a TensorFlow graph."""


class FixError(GraphdocError):
    """The requested fix could not be applied or did not check out."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message: TensorFlow's run to many lines."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
