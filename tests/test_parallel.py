"""Rule families on separate cores: forked workers, the same findings as one process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from graphdoc import parallel


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


def _blocks(x):
    """Training-mode BatchNorms and dropouts: findings of two rule families, found in two processes."""
    import tensorflow as tf

    from tests import graphs

    forms = (graphs.tf1_early_dropout, graphs.tf113_dropout, graphs.tf2_dropout)
    for index in range(3):
        with tf.compat.v1.variable_scope(f"block{index}"):
            channels = tf.ones([x.shape[-1]])
            x = tf.compat.v1.nn.fused_batch_norm(x, channels, channels * 0.0, is_training=True)[0]
            x = forms[index % len(forms)](x)
    return x


def test_a_parallel_scan_finds_what_a_serial_scan_finds(tmp_path):
    from tests import graphs

    model = tmp_path / "blocks.pb"
    model.write_bytes(graphs.build(_blocks, input_shape=(None, 4, 4, 3)))
    out = _fresh_python(f"""
        import collections, json, os
        from graphdoc import scanning
        from graphdoc.loading import load
        model = load({str(model)!r})
        def findings():
            return [(f.code, f.scope, f.node, f.message, f.nodes, repr(f.fix), f.unfixable) for f in scanning.scan(model)]
        scanning.PARALLEL_FROM_NODES = 10**9
        serial = findings()
        scanning.PARALLEL_FROM_NODES = 0
        forks = []
        real_fork = os.fork
        os.fork = lambda: forks.append(1) or real_fork()
        parallel = findings()
        counts = collections.Counter(code for code, *_ in serial)
        print(json.dumps({{"same": serial == parallel, "counts": counts, "forked": len(forks)}}))
    """)
    result = json.loads(out)
    assert result["same"] and result["forked"] >= 1
    assert result["counts"]["GD101"] == 3 and result["counts"]["GD201"] == 3
