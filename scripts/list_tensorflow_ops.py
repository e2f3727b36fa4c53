"""Write graphdoc/data/tensorflow_ops.txt: the op names the installed TensorFlow registers.

    python scripts/list_tensorflow_ops.py

graphdoc reads the list to say which ops of a graph are custom or unknown,
without importing TensorFlow itself.
"""

from pathlib import Path

import tensorflow as tf
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session

buffer = pywrap_tf_session.TF_GetAllOpList()
ops = op_def_pb2.OpList.FromString(pywrap_tf_session.TF_GetBuffer(buffer))
target = Path(__file__).resolve().parent.parent / "graphdoc" / "data" / "tensorflow_ops.txt"
header = f"# Op names registered by TensorFlow {tf.__version__} (scripts/list_tensorflow_ops.py), one per line.\n"
target.write_text(header + "".join(f"{name}\n" for name in sorted(op.name for op in ops.op)))
print(f"wrote {len(ops.op)} op names to {target}")
