"""Ops that must not run while graphdoc probes a graph: they touch files or run Python."""

from __future__ import annotations

from graphdoc.errors import GraphdocError
from graphdoc.graph.model import Model

UNSAFE_OPS = frozenset({
    # files
    "ReadFile", "WriteFile", "MatchingFiles", "ImmutableConst", "Save", "SaveV2", "SaveSlices",
    "Restore", "RestoreV2", "RestoreSlice", "MergeV2Checkpoints", "ShardedFilename",
    "WholeFileReader", "WholeFileReaderV2", "TFRecordReader", "TFRecordReaderV2", "TextLineReader",
    "TextLineReaderV2", "FixedLengthRecordReader", "FixedLengthRecordReaderV2", "LMDBReader",
    "DatasetToTFRecord", "ExperimentalDatasetToTFRecord",
    # summaries and printing (PrintV2 can name a file as its output stream)
    "Print", "PrintV2", "CreateSummaryFileWriter", "CreateSummaryDbWriter", "WriteSummary",
    "WriteScalarSummary", "WriteImageSummary", "WriteAudioSummary", "WriteHistogramSummary",
    "WriteGraphSummary", "WriteRawProtoSummary", "FlushSummaryWriter", "CloseSummaryWriter", "ImportEvent",
    # arbitrary Python
    "PyFunc", "PyFuncStateless", "EagerPyFunc",
})


def unsafe_nodes(model: Model) -> list[str]:
    """Nodes, in the graph and its functions, whose op is on the deny list."""
    return [
        f"{view.scope}::{name}" if view.scope else name
        for view in model.views
        for name in view.ops_of(UNSAFE_OPS)
    ]


def refuse_unsafe(model: Model, *, allow: bool, purpose: str) -> None:
    found = unsafe_nodes(model)
    if found and not allow:
        shown = ", ".join(f"{name} ({_op(model, name)})" for name in found[:5])
        more = f" and {len(found) - 5} more" if len(found) > 5 else ""
        raise GraphdocError(
            f"refusing to run the graph for {purpose}: it touches files or runs Python at {shown}{more}; "
            "pass --allow-unsafe-ops if you trust it"
        )


def _op(model: Model, location: str) -> str:
    scope, _, name = location.rpartition("::")
    return model.view(scope).op(name)
