"""Rule families on separate cores: forked workers, the same findings as one process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from graphdoc import parallel

MOBILENET = Path(__file__).resolve().parents[1] / "samples" / "mobilenet_v1_0.25_128_training.pb"


def _fresh_python(code: str) -> str:
    # This test process has TensorFlow loaded, where run_all rightly refuses to fork;
    # a fresh interpreter without it is where forking happens.
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_results_come_back_in_order_from_forked_workers():
    out = _fresh_python("""
        import json, os
        from graphdoc.parallel import run_all
        results = run_all([lambda i=i: (i, os.getpid()) for i in range(3)])
        print(json.dumps({"order": [i for i, _ in results], "pids": len({p for _, p in results}), "me": results[0][1] == os.getpid()}))
    """)
    assert json.loads(out) == {"order": [0, 1, 2], "pids": 3, "me": True}


def test_a_failing_worker_raises_its_error_in_the_parent():
    out = _fresh_python("""
        from graphdoc.parallel import run_all
        def broken():
            raise ValueError("worker broke")
        try:
            run_all([lambda: 1, broken])
        except ValueError as error:
            print("raised:", error)
    """)
    assert out == "raised: worker broke"


def test_with_tensorflow_loaded_the_work_runs_here():
    assert "tensorflow" in sys.modules  # the test suite imports it
    import os

    assert {pid for pid in parallel.run_all([os.getpid, os.getpid])} == {os.getpid()}


def test_a_parallel_scan_finds_what_a_serial_scan_finds():
    out = _fresh_python(f"""
        import json, os
        from graphdoc import scanning
        from graphdoc.loading import load
        model = load({str(MOBILENET)!r})
        def findings():
            return [(f.code, f.scope, f.node, f.message, f.nodes, repr(f.fix), f.unfixable) for f in scanning.scan(model)]
        scanning.PARALLEL_FROM_NODES = 10**9
        serial = findings()
        scanning.PARALLEL_FROM_NODES = 0
        forks = []
        real_fork = os.fork
        os.fork = lambda: forks.append(1) or real_fork()
        parallel = findings()
        print(json.dumps({{"same": serial == parallel, "count": len(serial), "forked": len(forks)}}))
    """)
    result = json.loads(out)
    assert result["same"] and result["count"] > 0 and result["forked"] >= 1
