"""graphdoc: find and repair TensorFlow graphs exported in training mode.

The library API (load, scan, fix, probe, compare, save, fix_file) is documented
in graphdoc.api; importing graphdoc does not import TensorFlow. Verifying a fix
on its own is graphdoc.api.verify: `graphdoc.verify` is the package that holds
probe, verification and compare.
"""

__version__ = "0.1.0"

from graphdoc.api import (  # noqa: E402
    FixResult,
    VerificationFailed,
    compare,
    fix,
    fix_file,
    load,
    probe,
    save,
    scan,
)

__all__ = ["load", "scan", "fix", "probe", "compare", "save", "fix_file", "FixResult", "VerificationFailed"]
