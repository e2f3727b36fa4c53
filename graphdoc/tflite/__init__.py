"""TensorFlow Lite models: training mode as the converter leaves it, reported (there is nothing to fix in them).

The converter turns a training-mode BatchNorm into MEAN over the batch axes
(and SQUARED_DIFFERENCE, RSQRT, ...) and dropout into RANDOM_UNIFORM compared
against the rate, without a warning; the moving statistics are not in the
file at all. graphdoc reads the flatbuffer with the `tflite` package (its
schema's generated code; no TensorFlow), reports both, and names the layers to
fix in the graph the file was converted from.
"""
