"""What a person sees: `dvc plots show` and the Data Docs, rendered offline in headless Chromium.

The pages are rendered by Debian's Chromium (`make test` installs it) with the network
closed to them: every script and style must come from web_assets/ (`make install`). Charts
are Vega rendered as SVG; each bar and axis carries an ARIA label (Vega's own), which says
what a reader sees: which field is on which axis, and each bar's category and value.
Screenshots go to build/screenshots/ for a reviewer.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest
from conftest import REPO, SAUDI_SAMPLE, copy_project, run_command
from pipeline_runs import run_pipeline

from pipeline import plots
from pipeline.params import load_params

CHROMIUM = Path("/usr/bin/chromium")
NODE_MODULES = REPO / "web_assets" / "node_modules"
SCREENSHOTS = REPO / "build" / "screenshots"
# As the machine's probe starts it: no sandbox (root), and no background connections
# (they are refused here, many at a time).
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=10000")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists() or not NODE_MODULES.is_dir(),
                                reason="needs Chromium and web_assets/ (`make test` installs both)")


def chromium(page: Path, tmp_path: Path, *args: str) -> str:
    """Run headless Chromium on a local page (scripts run to completion); its stdout."""
    result = subprocess.run([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}", *args,
                             page.as_uri()], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def rendered_dom(page: Path, tmp_path: Path) -> str:
    return chromium(page, tmp_path, "--dump-dom")


def screenshot(page: Path, tmp_path: Path, name: str, height: int) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    chromium(page, tmp_path, f"--screenshot={SCREENSHOTS / name}", f"--window-size=1400,{height}")
    return SCREENSHOTS / name


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A copy of the project with the seed and SaudiNewsNet sample drops run through the real
    stages up to split (Data Docs included), and the plot CSVs: what `dvc plots show` reads."""
    root = copy_project(tmp_path_factory.mktemp("views") / "project")
    (root / "dvc.lock").unlink()  # its outputs are not in this copy's cache: as never reproduced
    (root / "data" / "raw" / "saudinewsnet").symlink_to(SAUDI_SAMPLE)
    (root / "web_assets" / "node_modules").symlink_to(NODE_MODULES)
    params = load_params(root / "params.yaml")
    run_pipeline(root / "data" / "raw", root / "build", params)
    for table in (root / "build" / "metrics").glob("*.csv"):  # split writes them beside its metrics
        shutil.copy(table, root / "metrics" / table.name)
    plots.run({stage: root / "build" / stage for stage in ("ingest", "clean", "dedup", "split")}, root / "build" / "plots")
    return root


# ---------------------------------------------------------------------------- plots

# Each chart of dvc.yaml `plots:`: its div id, CSV, x column and y columns, and axis titles.
CHARTS = [
    ("build_dedup_plots_candidate_similarity_csv", "build/dedup/plots/candidate_similarity.csv", "similarity",
     ["pairs"], "Jaccard similarity of the pair", "candidate pairs"),
    ("build_dedup_plots_cluster_sizes_csv", "build/dedup/plots/cluster_sizes.csv", "size", ["clusters"],
     "cluster size (kept article + its duplicates)", "clusters"),
    ("Articles_taken_out__by_reason_and_stage", "build/plots/quarantine_by_stage.csv", "reason",
     ["ingest", "clean", "dedup"], "reason", "articles"),
    ("Articles_per_drop__after_each_step", "build/plots/articles_by_drop.csv", "drop",
     ["inputs", "ingested", "cleaned", "deduplicated", "published"], "drop", "articles"),
    ("Characters_per_published_article__by_split", "build/plots/chars_by_split.csv", "n_chars",
     ["train", "validation", "test"], "characters", "articles"),
    ("Words_per_published_article__by_split", "build/plots/words_by_split.csv", "n_words",
     ["train", "validation", "test"], "words", "articles"),
    ("Articles_per_day__by_split", "metrics/split_by_date.csv", "published_date", ["train", "validation", "test"],
     "published_date", "articles"),
    ("Articles_per_outlet__by_split", "metrics/split_by_source.csv", "source", ["train", "validation", "test"],
     "source", "articles"),
]
BAR = re.compile(r'<path aria-label="([^"]*)" role="graphics-symbol" aria-roledescription="bar" d="M[-\d.]+,[-\d.]+h[-\d.]+v([-\d.]+)')


def chart_sections(dom: str) -> dict[str, str]:
    """The rendered DOM of each chart, by the id of its div."""
    parts = re.split(r'<div id="([^"]+)"', dom)
    return dict(zip(parts[1::2], parts[2::2]))


def bars(section: str) -> list[tuple[dict[str, str], float]]:
    """Each bar of a chart: its ARIA fields (axis title -> value shown) and its drawn height."""
    drawn = []
    for label, height in BAR.findall(section):
        fields = dict(part.split(": ", 1) for part in unescape(label).split("; "))
        drawn.append((fields, abs(float(height))))
    return drawn


def test_every_plot_draws_its_bars_on_the_right_axes(built, tmp_path):
    run_command(str(REPO / ".venv" / "bin" / "dvc"), "plots", "show", cwd=built)
    page = built / "dvc_plots" / "index.html"
    html = page.read_text(encoding="utf-8")
    assert "cdn.jsdelivr.net" not in html and "../web_assets/node_modules/vega/build/vega.min.js" in html

    sections = chart_sections(rendered_dom(page, tmp_path))
    screenshot(page, tmp_path, "plots.png", 3000)

    assert list(sections) == [chart[0] for chart in CHARTS]
    for chart_id, table, x, ys, x_title, y_title in CHARTS:
        section = sections[chart_id]
        # The category on x (a discrete scale, every row), the counts on y (a linear scale).
        rows = list(csv.DictReader((built / table).open(encoding="utf-8")))
        assert f"X-axis titled '{x_title}' for a discrete scale with {len(rows)} values" in section, chart_id
        assert f"Y-axis titled '{y_title}' for a linear scale" in section, chart_id
        drawn = bars(section)
        shown = {(fields[x_title], fields.get("field", ys[0])): int(fields[y_title].replace(",", "")) for fields, _ in drawn}
        expected = {(row[x], y): int(row[y]) for row in rows for y in ys}
        assert shown == expected, chart_id
        # Bar heights are proportional to the counts: the bars a reader sees are the data.
        scale = {round(height / int(fields[y_title].replace(",", "")), 3) for fields, height in drawn
                 if int(fields[y_title].replace(",", ""))}
        assert scale and max(scale) - min(scale) <= 0.01 * max(scale), (chart_id, scale)
    # The two dedup charts the issue found wrong: similarity bins on x with pair counts, sizes on x.
    similarity = {fields["Jaccard similarity of the pair"] for fields, _ in bars(sections[CHARTS[0][0]])}
    assert "0.95-1.00" in similarity
    sizes = {fields["cluster size (kept article + its duplicates)"] for fields, _ in bars(sections[CHARTS[1][0]])}
    assert "2" in sizes


def test_plot_tables_add_up_to_the_stage_reports(built):
    def table(name: str) -> list[dict[str, str]]:
        return list(csv.DictReader((built / "build" / "plots" / f"{name}.csv").open(encoding="utf-8")))

    metrics = {stage: json.loads((built / "build" / "metrics" / f"{stage}.json").read_text())
               for stage in ("ingest", "clean", "dedup", "split")}
    drops = table("articles_by_drop")
    assert [row["drop"] for row in drops] == ["saudinewsnet", "seed"]
    for step, total in (("inputs", metrics["ingest"]["input"]), ("ingested", metrics["ingest"]["articles"]),
                        ("cleaned", metrics["clean"]["articles"]), ("deduplicated", metrics["dedup"]["articles"]),
                        ("published", metrics["split"]["articles"])):
        assert sum(int(row[step]) for row in drops) == total, step
    reasons = table("quarantine_by_stage")
    assert sum(int(row["ingest"]) for row in reasons) == metrics["ingest"]["quarantined"]
    assert sum(int(row["clean"]) for row in reasons) == metrics["clean"]["quarantined"]
    assert sum(int(row["dedup"]) for row in reasons) == metrics["dedup"]["duplicates"]
    for name, column, first_bin in (("chars_by_split", "n_chars", "0-249"), ("words_by_split", "n_words", "0-49")):
        rows = table(name)
        assert rows[0][column] == first_bin and len(rows) == 8
        assert sum(int(row[split]) for row in rows for split in ("train", "validation", "test")) == metrics["split"]["articles"]
