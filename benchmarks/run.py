"""Measure graphdoc against the floor and against TensorFlow's optimize_for_inference.

    python benchmarks/run.py [--runs 3] [--skip-1m] [--verify]

Each command runs in a fresh process (cold start, like a user's), several
times, taking turns with the commands it is compared with; the table shows
the median wall time and the peak resident memory of the process. Ratios
are computed within this one run. Timings are measured here, never
asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable

# Runs `argv` as a child and prints its peak RSS in KiB: RUSAGE_CHILDREN of a
# wrapper with exactly one child is that child's own peak.
_PEAK = (
    "import resource, subprocess, sys;"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode;"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)"
)

FLOOR = (
    "import sys; from tensorboard.compat.proto.graph_pb2 import GraphDef;"
    "g = GraphDef(); g.ParseFromString(open(sys.argv[1], 'rb').read()); g.SerializeToString()"
)


def measure_side_by_side(
    commands: dict[str, list[str]], runs: int, once: frozenset[str] = frozenset()
) -> dict[str, tuple[float, float]]:
    """Median wall seconds and peak MiB of each command, run in turns.

    Taking turns (a, b, c, a, b, c, ...) rather than all runs of one command
    at once gives every command the same share of a machine whose speed
    drifts (a shared VM does), so the ratios compare like with like. The
    commands in `once` run in the first turn only.
    """
    times: dict[str, list[float]] = {label: [] for label in commands}
    peaks: dict[str, list[float]] = {label: [] for label in commands}
    for turn in range(runs):
        for label, argv in commands.items():
            if turn and label in once:
                continue
            start = time.perf_counter()
            out = subprocess.run([PY, "-c", _PEAK, *argv], capture_output=True, text=True, check=True).stdout.split()
            times[label].append(time.perf_counter() - start)
            peaks[label].append(int(out[0]) / 1024)
    return {label: (statistics.median(times[label]), max(peaks[label])) for label in commands}


def commands(graph: Path, output: str, scratch: Path, verify: bool = False) -> dict[str, list[str]]:
    graphdoc = [PY, "-m", "graphdoc"]
    runs = {
        "graphdoc scan": [*graphdoc, "scan", str(graph), "--exit-zero"],
        "graphdoc fix": [*graphdoc, "fix", str(graph), "-o", str(scratch / "fixed.pb"), "--no-verify"],
        "floor (parse + serialize)": [PY, "-c", FLOOR, str(graph)],
        "optimize_for_inference": [
            PY, "-m", "tensorflow.python.tools.optimize_for_inference", f"--input={graph}",
            f"--output={scratch / 'ofi.pb'}", "--frozen_graph=True", "--input_names=input", f"--output_names={output}",
        ],
    }
    if verify:  # running the graph: TensorFlow, the probe, the comparison
        runs["graphdoc fix, verified"] = [*graphdoc, "fix", str(graph), "-o", str(scratch / "verified.pb")]
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-1m", action="store_true", help="leave out the million-node graph")
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--verify", action="store_true",
                        help="also time fix with its verification, once per graph but the million-node one")
    args = parser.parse_args()
    subprocess.run([PY, str(HERE / "make_graphs.py"), str(args.data)], check=True)
    results: dict[str, dict] = {}
    sample = ROOT / "samples" / "mobilenet_v1_0.25_128_training.pb"
    startup = measure_side_by_side({
        "import tensorflow": [PY, "-c", "import tensorflow"],
        "graphdoc scan": [PY, "-m", "graphdoc", "scan", str(sample), "--exit-zero"],
    }, args.runs)
    tf_time = startup["import tensorflow"][0]
    results["python -c 'import tensorflow'"] = {"": startup["import tensorflow"]}
    results["MobileNet v1 0.25/128 sample"] = {"graphdoc scan": startup["graphdoc scan"]}
    graphs = [("efficientnetb7_training.pb", "Identity"), ("synthetic_50k.pb", "output")]
    if not args.skip_1m:
        graphs.append(("synthetic_1m.pb", "output"))
    with tempfile.TemporaryDirectory() as scratch:
        for name, output in graphs:
            # optimize_for_inference takes minutes on a million nodes: one run is enough to compare.
            # A verified fix takes a minute on EfficientNetB7, and is not practical on a million nodes.
            once = frozenset({"optimize_for_inference"} if "1m" in name else {"graphdoc fix, verified"})
            verify = args.verify and "1m" not in name
            results[name] = measure_side_by_side(commands(args.data / name, output, Path(scratch), verify),
                                                 args.runs, once)
    report(results, tf_time)
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")


def report(results: dict[str, dict], tf_time: float) -> None:
    print(f"{'graph':34} {'command':28} {'median s':>9} {'peak MiB':>9}  ratio")
    for graph, rows in results.items():
        ofi = rows.get("optimize_for_inference", (None,))[0]
        for label, (seconds, peak) in rows.items():
            ratio = ""
            if label.startswith("graphdoc") and "verified" not in label and ofi:
                ratio = f"{ofi / seconds:.1f}x faster than optimize_for_inference"
            if graph.startswith("MobileNet"):
                ratio = f"{seconds / tf_time:.3f}x of 'import tensorflow'"
            print(f"{graph:34} {label:28} {seconds:9.2f} {peak:9.0f}  {ratio}")


if __name__ == "__main__":
    main()
