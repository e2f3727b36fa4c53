"""Regenerate the sample models in this directory.

    python samples/make_samples.py [DIRECTORY]

Each sample is a real model built with TensorFlow's own model code, frozen in
training mode by mistake, as users find them. Weights are random (nothing is
downloaded); the moving statistics hold non-trivial values.

The PyTorch pair is an exported file because PyTorch is too large a download
for the tests to install: a small conv net trained for a few steps, exported
by torch.onnx in training mode (BatchNormalization training_mode=1, live
Dropout) and, as the reference, in eval mode (samples/zoo_onnx.py,
torch_training_export; needs torch).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import zoo  # noqa: E402

SAMPLES = {
    # The classic report: keras.applications MobileNet v1, alpha 0.25, 128x128,
    # called with training=True and frozen. 27 BatchNorm layers and a dropout.
    "mobilenet_v1_0.25_128_training.pb": lambda: zoo.keras_pair(zoo.keras_mobilenet_v1(), (128, 128, 3)),
    # A tf-slim conv net with fused BatchNorm whose updates run inline, and dropout.
    "slim_convnet_training.pb": lambda: zoo.tf1_pair(
        zoo.slim_conv_stack(fused=True, inline_updates=True), (16, 16, 3)
    ),
}


TORCH_PAIR = ("torch_convnet_training.onnx", "torch_convnet_eval.onnx")


def main(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, build in SAMPLES.items():
        (directory / name).write_bytes(build().training)
        print(f"wrote {directory / name}")
    import zoo_onnx

    pair = zoo_onnx.torch_training_export()
    for name, model in zip(TORCH_PAIR, (pair.training, pair.inference), strict=True):
        (directory / name).write_bytes(model)
        print(f"wrote {directory / name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
