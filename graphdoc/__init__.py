"""graphdoc: find and repair TensorFlow graphs exported in training mode.

The library API (load, scan, fix, probe, save) is documented in graphdoc.api;
importing graphdoc does not import TensorFlow.
"""

__version__ = "0.1.0"

from graphdoc.api import fix, load, probe, save, scan  # noqa: E402

__all__ = ["load", "scan", "fix", "probe", "save"]
