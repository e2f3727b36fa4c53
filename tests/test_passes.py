"""The rewriter's passes: overlapping fixes held apart, and a pass that breaks the graph named."""

import dataclasses

from graphdoc.cli import main
from graphdoc.graph.edits import MakeIdentity, RemoveNodes, SetAttrs
from graphdoc.graph.view import Tensor
from graphdoc.rewrite.passes import without_overlaps
from graphdoc.rules import Finding, Fix


def _finding(code, node, *edits):
    return Finding(code=code, scope="", node=node, message="m", fix=Fix("f", edits))


def test_fixes_that_change_the_same_node_overlap_and_the_first_wins():
    first = _finding("GD201", "mul", MakeIdentity("", "mul", Tensor("x")))
    second = _finding("GD304", "mul", SetAttrs("", "mul", (("T", 1),)))
    kept, overlapping = without_overlaps([first, second])
    assert kept == [first]
    [held] = overlapping
    assert held.fix is None and "overlaps the fix of GD201 at mul" in held.unfixable


def test_erasing_a_node_another_fix_changes_overlaps_but_erasing_it_twice_does_not():
    erase = _finding("GD303", "assign", RemoveNodes("", frozenset({"assign", "sub"})))
    again = _finding("GD101", "bn", RemoveNodes("", frozenset({"sub"})), SetAttrs("", "bn", ()))
    change = _finding("GD304", "sub", MakeIdentity("", "sub", Tensor("x")))
    kept, overlapping = without_overlaps([erase, again, change])
    assert kept == [erase, again] and [f.node for f in overlapping] == ["sub"]


def test_a_duplicated_fix_is_held_back_with_a_sentence_not_a_traceback(build, write, tmp_path, capsys, monkeypatch):
    from graphdoc.rules.gd201_live_dropout import LiveDropout

    honest = LiveDropout.check

    def twice(self, view, model):
        for finding in honest(self, view, model):
            yield finding
            yield dataclasses.replace(finding, code="GD201")

    monkeypatch.setattr(LiveDropout, "check", twice)
    output = tmp_path / "fixed.pb"
    code = main(["fix", str(write(build("v1_dropout_keep_prob_tensor").training)), "-o", str(output), "--no-verify"])
    out = capsys.readouterr().out
    assert code in (0, 1) and output.exists()
    assert "overlaps the fix of GD201" in out


def test_a_pass_that_breaks_the_graph_is_named_and_nothing_is_written(build, write, tmp_path, capsys, monkeypatch):
    from graphdoc.graph.edits import SetInputs
    from graphdoc.rules.gd201_live_dropout import LiveDropout

    honest = LiveDropout._finding

    def makes_a_cycle(self, view, dropout):
        finding = honest(self, view, dropout)
        # The masking node reads its own consumer: a cycle TensorFlow would refuse.
        consumer = view.consumers(finding.node)[0]
        edit = SetInputs(view.scope, finding.node, ((0, Tensor(consumer)),))
        return dataclasses.replace(finding, fix=Fix("cycle", (edit,)))

    monkeypatch.setattr(LiveDropout, "_finding", makes_a_cycle)
    output = tmp_path / "fixed.pb"
    assert main(["fix", str(write(build("v1_dropout_keep_prob_tensor").training)), "-o", str(output)]) == 2
    err = capsys.readouterr().err
    assert "after the pass 'apply the fixes' the graph does not check out" in err and "cycle" in err
    assert err.count("\n") == 1 and not output.exists()
