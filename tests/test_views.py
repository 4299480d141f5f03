"""What a person sees: `dvc plots show` and the Data Docs, rendered offline in headless Chromium.

The pages are rendered by Debian's Chromium (`make test` installs it) offline: every script
and style must come from web_assets/ (`make install`); no page may name a network address
for what it loads. Charts
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
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape
from pathlib import Path

import pytest
from conftest import REPO, SAUDI_SAMPLE, copy_project, run_command
from pipeline_runs import run_pipeline

from pipeline.plumbing.params import load_params
from pipeline.stages import figures

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


def screenshot(page: Path, tmp_path: Path, name: str, height: int, script: str = "") -> Path:
    """A screenshot of `page` (after `script`, run once it has loaded) in build/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with with_script(page, script) as shown:
        chromium(shown, tmp_path, f"--screenshot={SCREENSHOTS / name}", f"--window-size=1400,{height}")
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
    figures.write_plot_tables({stage: root / "build" / stage for stage in ("ingest", "clean", "dedup", "split")},
                              root / "build" / "plots")
    return root


# ---------------------------------------------------------------------------- plots

# Each chart of dvc.yaml `plots:`: its div id, CSV, x column and y columns, and axis titles.
CHARTS = [
    ("build_dedup_plots_candidate_similarity_csv", "build/dedup/plots/candidate_similarity.csv", "similarity",
     ["pairs"], "Jaccard similarity of the pair", "candidate pairs"),
    ("build_dedup_plots_cluster_sizes_csv", "build/dedup/plots/cluster_sizes.csv", "size", ["clusters"],
     "cluster size (kept article + its duplicates)", "clusters"),
    ("Articles_taken_out__by_reason_and_stage", "build/plots/quarantine_by_stage.csv", "reason",
     ["ingest", "clean", "dedup", "split"], "reason", "articles"),
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
    run_command("dvc", "plots", "show", cwd=built)
    page = built / "dvc_plots" / "index.html"
    html = page.read_text(encoding="utf-8")
    assert "cdn.jsdelivr.net" not in html and "../web_assets/node_modules/vega/build/vega.min.js" in html

    sections = chart_sections(rendered_dom(page, tmp_path))
    screenshot(page, tmp_path, "plots.png", 1700)

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
    assert sum(int(row["split"]) for row in reasons) == metrics["split"]["quarantined"]
    for name, column, first_bin in (("chars_by_split", "n_chars", "0-249"), ("words_by_split", "n_words", "0-49")):
        rows = table(name)
        assert rows[0][column] == first_bin and len(rows) == 8
        assert sum(int(row[split]) for row in rows for split in ("train", "validation", "test")) == metrics["split"]["articles"]


# ---------------------------------------------------------------------------- Data Docs

# Run in the page once it has loaded (and its scripts have run): what a reader sees, as JSON
# in an attribute of <body>, read back from Chromium's dump of the DOM.
PROBE = """<script>
window.addEventListener("load", () => setTimeout(() => {
  const arabic = /[\\u0600-\\u06FF]/;
  const icon = document.querySelector(".fas");
  const cells = [...document.querySelectorAll("td .show-scrollbars")].filter(d => arabic.test(d.textContent)).map(d => {
    const node = [...d.childNodes].find(n => n.nodeType === 3 && arabic.test(n.data));
    if (!node) return {text: d.textContent.trim(), right_gap: 0, left_gap: 0};  // in nested markup: not a value cell
    const range = document.createRange(), text = node.data, at = i => {
      range.setStart(node, i); range.setEnd(node, i + 1); return range.getBoundingClientRect(); };
    const first = at(text.search(/\\S/)), last = at(text.trimEnd().length - 1), box = d.getBoundingClientRect();
    return {text: text.trim(), first_x: first.left, last_x: last.left, right_gap: box.right - Math.max(first.right, last.right),
            left_gap: Math.min(first.left, last.left) - box.left};
  });
  document.body.setAttribute("data-facts", JSON.stringify({
    pwned: typeof window.pwned,
    body_font: getComputedStyle(document.body).fontFamily,
    icon_font: icon ? getComputedStyle(icon, "::before").fontFamily : null,
    bootstrap_tables: document.querySelectorAll(".bootstrap-table").length,
    index_rows: document.querySelectorAll("#Validation-Results tbody tr").length,
    text: document.body.innerText,
    cells,
  }));
}, 500));
</script>"""


@contextmanager
def with_script(page: Path, script: str) -> Iterator[Path]:
    """A copy of `page` beside it (its links still work) with `script` at the end of its body."""
    copy = page.with_name(f"scripted-{page.name}")
    copy.write_text(page.read_text(encoding="utf-8").replace("</body>", f"{script}</body>"), encoding="utf-8")
    try:
        yield copy
    finally:
        copy.unlink()


# What a reader clicks to see the failures only: GX's "Failed Only" button.
SHOW_FAILED_ONLY = '<script>addEventListener("load", () => hideSucceededValidations());</script>'


def page_facts(page: Path, tmp_path: Path) -> dict:
    """What `PROBE` finds on `page`, rendered by Chromium."""
    with with_script(page, PROBE) as probed:
        dom = rendered_dom(probed, tmp_path)
    found = re.search(r'<body[^>]*data-facts="([^"]*)"', dom)
    assert found, f"the probe did not run on {page}"
    return json.loads(unescape(found.group(1)))


def assert_styled_and_offline(page: Path, facts: dict) -> None:
    html = page.read_text(encoding="utf-8")
    loaded = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="([^"]+)"', html)
    assert loaded and not [url for url in loaded if "://" in url], page  # nothing from the network
    assert "Segoe UI" in facts["body_font"], facts["body_font"]  # Bootstrap's font stack: its CSS applied
    assert "Font Awesome" in (facts["icon_font"] or ""), facts["icon_font"]  # the status icons' font
    assert facts["bootstrap_tables"] > 0  # bootstrap-table's script ran (the index table is filled by it)


def test_data_docs_of_a_passing_run_are_styled_offline(built, tmp_path):
    site = built / "build" / "validate" / "data_docs"
    index = site / "index.html"
    facts = page_facts(index, tmp_path)
    assert_styled_and_offline(index, facts)
    assert facts["index_rows"] == 3  # rows, deduplicated rows, table: one run
    for page in sorted(site.glob("validations/**/*.html")):
        assert_styled_and_offline(page, page_facts(page, tmp_path))


def xss_drop(root: Path) -> Path:
    """The seed drop with one headline written as entity-escaped markup, as scraped HTML has it:
    clean decodes it into a real <script> tag, which the validation rejects."""
    drop = root / "raw" / "hostile"
    shutil.copytree(REPO / "data" / "raw" / "seed", drop)
    article = sorted(drop.glob("*.txt"))[0]
    lines = article.read_text(encoding="utf-8").split("\n")
    lines[0] = "&lt;script&gt;window.pwned=1&lt;/script&gt;" + lines[0]
    article.write_text("\n".join(lines), encoding="utf-8")
    return root / "raw"


def test_markup_from_a_drop_is_shown_escaped_in_data_docs_and_runs_are_kept(tmp_path, capsys):
    from pipeline.plumbing.params import section
    from pipeline.stages import clean, ingest, validate

    params = load_params(REPO / "params.yaml")
    raw = xss_drop(tmp_path)
    ingest.run(raw, tmp_path / "ingest", None, section(params, "ingest"))
    clean.run(tmp_path / "ingest", tmp_path / "clean", None, params)
    out = tmp_path / "validate"
    for _ in range(2):  # a second run: the Data Docs keep the first
        report = validate.run(tmp_path / "clean" / "articles.parquet", out, None, params, REPO / "gx")

    tag_check = next(check for check in report.failed if check.description == "No HTML tag in title")
    assert tag_check.example_values[0]["title"].startswith("<script>window.pwned=1</script>")
    terminal = capsys.readouterr().err
    assert "title «<script>window.pwned=1</script>" in terminal

    site = out / "data_docs"
    index = site / "index.html"
    assert page_facts(index, tmp_path)["index_rows"] == 2 * 3  # two runs of the three suites
    pages = sorted(site.glob("validations/article_rows/**/*.html"))
    assert len(pages) == 2
    for page in pages:
        assert "<script>window.pwned" not in page.read_text(encoding="utf-8")
        facts = page_facts(page, tmp_path)
        assert_styled_and_offline(page, facts)
        assert facts["pwned"] == "undefined"  # the title's script never ran...
        assert "<script>window.pwned=1</script>" in facts["text"]  # ...a reader sees it as text


def test_a_failure_on_a_derived_column_shows_the_original_title(built, tmp_path, capsys):
    """A title that is a boilerplate line fails on its match key: the reader sees the key and
    the title it came from, on the terminal and in Data Docs, the Arabic right to left."""
    import polars as pl

    from pipeline.plumbing.io import read_json, scan_partitions, write_table
    from pipeline.stages import validate

    articles = scan_partitions(built / "build" / "dedup", ["seed"], "articles.parquet").collect()
    victim = articles["id"][7]
    write_table(articles.with_columns(title=pl.when(pl.col("id") == victim).then(pl.lit("الرئيسية")).otherwise("title")),
                tmp_path / "articles.parquet")
    out = tmp_path / "validate"
    report = validate.run(tmp_path / "articles.parquet", out, None, load_params(built / "params.yaml"), REPO / "gx")

    [check] = report.failed
    assert check.column == "title_key"
    assert check.example_values == [{"id": victim, "title_key": "الرءيسيه", "title": "الرئيسية"}]
    assert f"{victim}: title_key «الرءيسيه»; title «الرئيسية»" in capsys.readouterr().err
    assert read_json(out / "results.json")["checks"][report.checks.index(check)]["example_values"] == check.example_values

    [page] = sorted((out / "data_docs").glob("validations/article_rows/**/*.html"))
    facts = page_facts(page, tmp_path)
    assert_styled_and_offline(page, facts)
    assert re.search(r"Unexpected Value\s+Count\s+id\s+title\s+الرءيسيه\s+1\s+" + victim + r"\s+الرئيسية", facts["text"]), \
        facts["text"][facts["text"].find("title is not") - 200:][:600]
    cells = {cell["text"]: cell for cell in facts["cells"]}
    for value in ("الرءيسيه", "الرئيسية"):  # read right to left...
        assert cells[value]["first_x"] > cells[value]["last_x"], cells[value]
    assert cells["الرءيسيه"]["right_gap"] < cells["الرءيسيه"]["left_gap"]  # ...aligned right (a cell wider than its text)
    screenshot(page, tmp_path, "data_docs.png", 1000, script=SHOW_FAILED_ONLY)
