"""graphdoc: find and repair TensorFlow graphs exported in training mode."""

__version__ = "0.1.0"
