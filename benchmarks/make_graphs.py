"""Generate the benchmark graphs deterministically into a directory (default benchmarks/data).

    python benchmarks/make_graphs.py [DIRECTORY]

- efficientnetb7_training.pb: keras.applications.EfficientNetB7 (weights=None),
  called with training=True and frozen (about 255 MB);
- synthetic_50k.pb and synthetic_1m.pb: blocks of conv + training-mode
  FusedBatchNormV3 + ReLU + dropout (see synthetic.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "samples")]

from synthetic import synthetic_graph  # noqa: E402


def efficientnet(path: Path) -> None:
    import keras
    import zoo

    keras.utils.set_random_seed(0)
    model = keras.applications.EfficientNetB7(weights=None)
    path.write_bytes(zoo._freeze_keras(model, (600, 600, 3), training=True))


def main(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, blocks in (("synthetic_50k.pb", 2_500), ("synthetic_1m.pb", 50_000)):
        if not (directory / name).exists():
            (directory / name).write_bytes(synthetic_graph(blocks).SerializeToString())
            print(f"wrote {directory / name}")
    if not (directory / "efficientnetb7_training.pb").exists():
        efficientnet(directory / "efficientnetb7_training.pb")
        print(f"wrote {directory / 'efficientnetb7_training.pb'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "data")
