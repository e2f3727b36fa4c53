"""The shape of the code: layers that import one way, and pieces small enough to read whole."""

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parent.parent / "graphdoc"


def _unit(module: str) -> str:
    """The package a module belongs to (graphdoc.rules.gd101 -> rules), or the module itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _imports() -> nx.DiGraph:
    """unit -> units it imports, lazily imported too (a function-level import is still a dependency)."""
    graph = nx.DiGraph()
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(("graphdoc", *path.relative_to(PACKAGE).with_suffix("").parts))
        source = _unit(module)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("graphdoc."):
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names if alias.name.startswith("graphdoc.")]
            else:
                continue
            for target in targets:
                if _unit(target) != source:
                    graph.add_edge(source, _unit(target))
    return graph


def test_no_import_cycle_between_graphdoc_packages():
    cycles = list(nx.simple_cycles(_imports().subgraph(
        ["graph", "rules", "rewrite", "sources", "verify", "tf", "onnx", "report", "cli"])))
    assert cycles == [], cycles


def test_no_class_over_300_lines_and_no_function_over_50():
    too_long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            limit = 300 if isinstance(node, ast.ClassDef) else 50
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.end_lineno - node.lineno + 1 > limit:
                too_long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}")
    assert too_long == []


def test_the_readme_rule_table_is_the_one_the_rule_classes_generate():
    from graphdoc.report.rule_table import rule_table

    readme = (PACKAGE.parent / "README.md").read_text()
    assert rule_table() in readme, "regenerate it: python -c 'from graphdoc.report.rule_table import rule_table; print(rule_table())'"
