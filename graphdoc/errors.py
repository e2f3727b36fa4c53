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


def install_tensorflow_hint() -> str:
    """What to run to get TensorFlow: the package itself, and the `tf` extra from a source checkout.

    graphdoc's own distribution is not on the package index, so a hint naming
    it (`pip install 'graphdoc-tf[tf]'`) would send the user to nothing.
    """
    from pathlib import Path

    checkout = Path(__file__).resolve().parent.parent
    project = checkout / "pyproject.toml"
    if not (project.is_file() and 'name = "graphdoc-tf"' in project.read_text(errors="replace")):
        return "pip install tensorflow"
    here = "." if checkout == Path.cwd().resolve() else str(checkout)
    return f"pip install tensorflow, or from the source checkout: pip install '{here}[tf]'"
