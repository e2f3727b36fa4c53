"""What a model takes and gives, as `graphdoc show MODEL` lists it (saved_model_cli's `show`)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from graphdoc.graph.model import Model
from graphdoc.graph.ports import Port
from graphdoc.report.text import parts


def ports_record(model: Model, outputs: list[str], signature: str | None) -> dict:
    """The model's feeds and fetches as the frozen graph names them, and each SavedModel
    signature's by key; `signature` is the one the graph was frozen from."""
    feeds, fetches = model.ports(outputs)
    return {
        "path": str(model.path),
        "format": model.format,
        "nodes": model.size()[0],
        "inputs": [port.record() for port in feeds],
        "outputs": [port.record() for port in fetches],
        "output_keys": dict(model.aliases),
        "signatures": {
            name: {"loaded": name == signature,
                   "inputs": [port.record() for port in ports["inputs"]],
                   "outputs": [port.record() for port in ports["outputs"]]}
            for name, ports in model.signatures.items()
        },
    }


def render_ports(console: Console, model: Model, outputs: list[str], signature: str | None) -> None:
    console.print(Text(str(model.path), style="bold") + Text(f"  {model.format}, {model.size()[0]} {parts(model)}"))
    keys = {tensor.split(":")[0]: key for key, tensor in model.aliases.items()}
    feeds, fetches = model.ports(outputs)
    console.print(_table("Feed", feeds))
    console.print(_table("Fetch", fetches, keys))
    for name, ports in model.signatures.items():
        loaded = " (frozen into the graph above)" if name == signature else ""
        console.print(Text(f"\nSignature {name!r}{loaded}", style="bold"))
        console.print(_table("inputs", ports["inputs"]))
        console.print(_table("outputs", ports["outputs"]))
    if model.signatures:
        console.print(Text("\nChoose a signature with --signature; name an output by its key with --outputs.", style="dim"))


def _table(title: str, ports: list[Port], keys: dict[str, str] | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("Name", "Dtype", "Shape", *(["Signature key"] if keys else [])):
        table.add_column(column, overflow="fold")
    for port in ports:
        key = [keys.get(port.name.split(":")[0], "")] if keys else []
        table.add_row(port.name, port.dtype, port.shape_text, *key)
    if not ports:
        table.add_row("(none)", "", "", *([""] if keys else []))
    return table
