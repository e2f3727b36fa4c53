"""The HTML report: self-contained, the divergence profile drawn, looked at in a real browser."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from graphdoc import api
from graphdoc.report.html import probe_html

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "mobilenet_v1_0.25_128_training.pb"
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    model = api.load(SAMPLE)
    report = api.probe(model)
    path = tmp_path_factory.mktemp("html") / "probe.html"
    path.write_text(probe_html(model, report, api.scan(model)))
    return path, report


def test_the_page_needs_nothing_from_the_network(page):
    text = page[0].read_text()
    assert "<script" not in text and not re.search(r"(src|href)=\"?(https?:)?//", text)


def test_the_profile_starts_at_the_first_batchnorm_and_marks_it(page):
    text, report = page[0].read_text(), page[1]
    first = report.roots[0]
    assert first.node.startswith("conv1_bn") and f"first divergence: {first.node}" in text
    # Every node before the first BatchNorm is flat: the same for the sample alone and in a batch.
    before = [row for row in report.profile[: [r[0] for r in report.profile].index(first.node)]]
    assert before and all(batch <= 1e-4 for _, _, batch, _ in before)
    assert text.count("<polyline") == 2 and "GD102 conv1_bn_1/moments/mean" in text


def _browser() -> str | None:
    return next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)


@pytest.mark.skipif(_browser() is None and not os.environ.get("CI"),
                    reason="needs a headless Chromium, not installed here (CI installs chromium-headless-shell)")
def test_a_headless_browser_renders_the_report(page, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    subprocess.run([_browser(), "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1100,900", page[0].as_uri()], check=True, capture_output=True, timeout=120)
    image = Image.open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 16) or []
    # Not blank: the chart's red line and the text, among the white.
    assert len(colours) > 20
    red = sum(count for count, (r, g, b) in colours if r > 150 and g < 90 and b < 90)
    assert red > 200, "the sample-vs-batch line is not on the page"


def test_probe_writes_the_report_with_html(tmp_path):
    from graphdoc.cli import main

    output = tmp_path / "probe.html"
    assert main(["probe", str(SAMPLE), "--html", str(output)]) == 1  # 1: it found where the sample diverges
    assert "Divergence profile" in output.read_text() and "conv1_bn_1/moments/mean" in output.read_text()


def test_scan_and_fix_write_their_findings_as_html(tmp_path):
    from graphdoc.cli import main

    scanned, fixed = tmp_path / "scan.html", tmp_path / "fix.html"
    assert main(["scan", str(SAMPLE), "--html", str(scanned)]) == 1
    assert "27 GD102, 1 GD201 found" in scanned.read_text() and "<svg" in scanned.read_text()
    assert main(["fix", str(SAMPLE), "-o", str(tmp_path / "fixed.pb"), "--no-verify", "--html", str(fixed)]) == 0
    page = fixed.read_text()
    assert "graphdoc fix" in page and page.count("class=finding") == 28 and "conv1_bn_1/moments/mean" in page
    assert main(["scan", str(SAMPLE), str(SAMPLE.parent), "--html", str(tmp_path / "many.html")]) == 2
