"""A self-contained HTML report: the probe's divergence profile and each finding's neighbourhood.

One file, no scripts and nothing fetched when it is viewed: the charts are
inline SVG drawn here. The profile is what the person in the classic report
did by hand, for every node at once: how far one sample's value moves when
its batch changes (and between two identical runs), in graph order, with
the first divergence and each finding marked.
"""

from __future__ import annotations

import html
import math

from graphdoc.graph.model import Model
from graphdoc.report.records import by_code
from graphdoc.rules import RULES_BY_CODE, Finding

_WIDTH, _HEIGHT, _MARGIN = 960, 320, 48
_FLOOR = 1e-9  # differences below this are drawn at the floor of the log scale
_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #1d2330; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; }
code { font: 12px ui-monospace, monospace; background: #f2f4f7; padding: 1px 4px; border-radius: 3px; }
.legend span { margin-right: 1.5em; } .finding { border-left: 4px solid #c0392b; padding-left: 1em; margin: 1.5em 0; }
table { border-collapse: collapse; font-size: 13px; } td, th { padding: 2px 10px; text-align: left; border-bottom: 1px solid #e3e6eb; }
td code { word-break: break-all; }
"""


def probe_html(model: Model, report, findings: list[Finding]) -> str:
    """The probe of `model` (a ProbeReport) with `findings`, as one HTML page."""
    first = report.roots[0] if report.roots else None
    verdict = (f"The sample's result first depends on its batch at <code>{html.escape(first.node)}</code> "
               f"({html.escape(first.op)}), {first.kind}." if first else
               "Batch-independent and deterministic: no probed tensor depends on its companions or the run.")
    body = [
        f"<p>{verdict} {report.probed} tensors were compared: one sample alone, in two batches of "
        f"{report.batch}, and in the same batch twice.</p>",
        *_notes([*model.notes, *report.notes]),
        "<h2>Divergence profile</h2>", _profile_svg(report, findings), _legend(), _roots_table(report),
    ]
    return _page(f"graphdoc probe: {model.path}", body, model, findings)


def scan_html(model: Model, findings: list[Finding], *, heading: str = "scan", summary: str = "") -> str:
    """The findings of `model` (what a scan found, or what a fix fixed), each with its neighbourhood."""
    counts = ", ".join(f"{len(group)} {code}" for code, group in by_code(findings).items())
    body = [f"<p>{html.escape(summary or (counts + ' found' if findings else 'No findings.'))}</p>",
            *_notes(model.notes)]
    return _page(f"graphdoc {heading}: {model.path}", body, model, findings)


def _page(title: str, body: list[str], model: Model, findings: list[Finding]) -> str:
    return "\n".join([
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style><body><h1>{html.escape(title)}</h1>", *body, "<h2>Findings</h2>",
        *(_finding_section(model, finding) for finding in findings if finding.scope == ""),
        "</body></html>",
    ])


def _notes(notes: list[str]) -> list[str]:
    return [f"<p><small>{html.escape(note)}</small></p>" for note in notes]


def _legend() -> str:
    return ('<p class=legend><span style="color:#c0392b">&#9632; sample vs. batch</span>'
            '<span style="color:#2e86de">&#9632; run vs. run</span>'
            '<span>&#9650; first divergence</span><span style="color:#8e44ad">| a finding</span></p>')


def _profile_svg(report, findings: list[Finding]) -> str:
    profile = report.profile
    if not profile:
        return "<p>No tensor with a batch dimension was probed.</p>"
    index = {node: position for position, (node, *_rest) in enumerate(profile)}
    top = math.log10(max(1.0, *(max(batch, run) for _, _, batch, run in profile)))
    bottom = math.log10(_FLOOR)

    def x(position: int) -> float:
        return _MARGIN + (_WIDTH - 2 * _MARGIN) * position / max(len(profile) - 1, 1)

    def y(value: float) -> float:
        level = math.log10(max(value, _FLOOR))
        return _HEIGHT - _MARGIN - (_HEIGHT - 2 * _MARGIN) * (level - bottom) / (top - bottom)

    lines = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" role="img" '
             'aria-label="divergence per node in graph order">',
             f'<rect width="{_WIDTH}" height="{_HEIGHT}" fill="#fff"/>']
    for exponent in range(int(bottom), int(math.ceil(top)) + 1, 3):
        level = y(10.0 ** exponent)
        lines.append(f'<line x1="{_MARGIN}" x2="{_WIDTH - _MARGIN}" y1="{level:.1f}" y2="{level:.1f}" stroke="#e3e6eb"/>'
                     f'<text x="4" y="{level + 4:.1f}" font-size="11" fill="#667">1e{exponent}</text>')
    for finding in (f for f in findings if f.node in index):
        at = x(index[finding.node])
        lines.append(f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{_MARGIN}" y2="{_HEIGHT - _MARGIN}" stroke="#8e44ad" '
                     f'stroke-opacity="0.35"><title>{html.escape(finding.code)} {html.escape(finding.node)}</title></line>')
    for column, colour in ((2, "#c0392b"), (3, "#2e86de")):
        points = " ".join(f"{x(p):.1f},{y(row[column]):.1f}" for p, row in enumerate(profile))
        lines.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
    if report.roots and report.roots[0].node in index:
        first = report.roots[0]
        cx, cy = x(index[first.node]), y(max(first.batch_difference, first.run_difference))
        lines.append(f'<path d="M{cx:.1f},{cy - 12:.1f} l-7,-12 h14 z" fill="#1d2330">'
                     f'<title>first divergence: {html.escape(first.node)}</title></path>')
    lines.append(f'<text x="{_MARGIN}" y="{_HEIGHT - 12}" font-size="11" fill="#667">'
                 f'{len(profile)} nodes in graph order; relative difference, log scale</text></svg>')
    return "\n".join(lines)


def _roots_table(report) -> str:
    if not report.roots:
        return ""
    rows = "".join(
        f"<tr><td>{number}</td><td><code>{html.escape(root.node)}</code></td><td>{html.escape(root.op)}</td>"
        f"<td>{root.kind}</td><td>{max(root.batch_difference, root.run_difference):.3g}</td>"
        f"<td>{html.escape(root.finding.code) if root.finding else 'no static finding'}</td></tr>"
        for number, root in enumerate(report.roots, 1)
    )
    return ("<h2>Where it starts</h2><table><tr><th>#</th><th>node</th><th>op</th><th>divergence</th>"
            f"<th>relative difference</th><th>explained by</th></tr>{rows}</table>")


def _finding_section(model: Model, finding: Finding) -> str:
    rule = RULES_BY_CODE[finding.code]
    fix = (f"fix: {html.escape(finding.fix.summary)}" if finding.fix is not None
           else f"no fix: {html.escape(finding.unfixable or '')}")
    return (f'<div class=finding><h3>{finding.code} {rule.name}: <code>{html.escape(finding.node)}</code></h3>'
            f"<p>{html.escape(finding.message)}<br>{fix}</p>{_neighbourhood_svg(model, finding.node)}</div>")


def _neighbourhood_svg(model: Model, node: str) -> str:
    """The node, what it reads on the left and what reads it on the right."""
    view = getattr(model, "main", None)  # a Keras file has layers and calls, no graph to draw
    if view is None or node not in view:
        return ""
    left = [tensor.node for tensor in view.inputs(node)][:6]
    right = view.consumers(node)[:6]
    rows = max(len(left), len(right), 1)
    height = 30 * rows + 20
    boxes, edges = [], []
    for column, names in ((0, left), (2, right)):
        for row, name in enumerate(names):
            bx, by = 10 + column * 320, 10 + row * 30
            boxes.append(_box(bx, by, name, view.op(name), "#f2f4f7"))
            ex = bx + 300 if column == 0 else bx
            edges.append(f'<line x1="{ex}" y1="{by + 11}" x2="{330 if column == 0 else 630}" '
                         f'y2="{height / 2 - 4}" stroke="#99a"/>')
    boxes.append(_box(330, height / 2 - 15, node, view.op(node), "#fde2df"))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="960" height="{height}">'
            + "".join(edges + boxes) + "</svg>")


def _box(x: float, y: float, name: str, op: str, fill: str) -> str:
    label = name if len(name) <= 42 else "..." + name[-39:]
    return (f'<g><rect x="{x}" y="{y}" width="300" height="22" rx="4" fill="{fill}" stroke="#99a"/>'
            f'<text x="{x + 6}" y="{y + 15}" font-size="11" font-family="monospace">{html.escape(label)} '
            f'({html.escape(op)})</text><title>{html.escape(name)}</title></g>')
