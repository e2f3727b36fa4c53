"""Everything that needs TensorFlow itself: reading checkpoints, running graphs.

Nothing outside this package imports TensorFlow, and this package is imported
lazily, so scanning and fixing a GraphDef never pays TensorFlow's start-up cost.
"""

import os

# TensorFlow's C++ start-up chatter would mix with graphdoc's report on stderr.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
