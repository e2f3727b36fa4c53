"""Everything that needs TensorFlow itself: reading checkpoints and SavedModels, running graphs.

Nothing outside this package imports TensorFlow, and this package is imported
lazily, so scanning and fixing a GraphDef never pays TensorFlow's start-up cost.
"""

import contextlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def _native_stderr_silenced():
    # TensorFlow 2.21's C++ start-up notes (oneDNN, CUDA) ignore TF_CPP_MIN_LOG_LEVEL
    # and would mix with graphdoc's messages on stderr. Python errors still propagate.
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


with _native_stderr_silenced():
    try:
        import tensorflow
    except ImportError:
        from graphdoc.errors import GraphdocError, install_tensorflow_hint

        raise GraphdocError(f"this needs TensorFlow, which is not installed: {install_tensorflow_hint()}") from None

# graphdoc calls TF1 APIs (freezing a checkpoint's graph) on purpose: their deprecation
# warnings would mix with its report.
tensorflow.get_logger().setLevel("ERROR")
