"""ONNX models: read, scanned, fixed and run as ONNX protos.

Only this package knows the format. It reports with graphdoc's findings
(rules.base.Finding, the same codes where the meaning is the same: GD101 a
BatchNormalization in training mode, GD102 batch moments, GD201 live dropout,
GD303 training leftovers) so every report, exit code and configuration works
as for TensorFlow graphs. Scanning needs the `onnx` package only; probe,
compare and verification run the model with onnxruntime, its graph
optimizations disabled (at its default level onnxruntime removes a Dropout
whose training_mode is true, so the file would compute different things
depending on a session option).
"""
