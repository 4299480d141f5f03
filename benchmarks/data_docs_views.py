"""What building Data Docs costs a validating process with GX's own page views (a Jinja
environment per page, its templates compiled each time) and with this project's
(pipeline/stages/data_docs_views.py: Jinja's bytecode cache), side by side, as ratios.

    .venv/bin/python benchmarks/data_docs_views.py --project /tmp/perf-bench/300000/project --drop new \\
        --raw /tmp/s15/drops/d5 --rounds 3

The commands that validate in a new drop's run: `corpus validate --drop NAME` (the row
suite on a drop's kept articles, what `validate --corpus` does for a new drop, plus its
Data Docs) and `corpus validate-drop RAW` (add-drop's check of a raw drop), each run
alternately with the GX project as this checkout has it and with the same project but GX's
default views (the `view` entries of great_expectations.yml's site left out). One
unmeasured run of each first, so the template cache is as a user's machine has it after its
first validation. `--project` is read only: its outputs are linked into a scratch project
under `--workdir`, and the figures are printed as by benchmarks/stage_startup.py (CPU s: user
+ sys of the process; medians over the rounds).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.stage_startup import arguments, prepared, side_by_side  # noqa: E402


def with_gx_views(gx_dir: Path, folder: Path) -> Path:
    """A copy of the GX project whose Data Docs site uses GX's default views (in `folder`,
    beside a link to its suites: the project finds them at ../expectations)."""
    target = folder / "gx"
    shutil.copytree(gx_dir, target)
    (folder / "expectations").symlink_to(gx_dir.parent / "expectations")
    config = yaml.safe_load((target / "great_expectations.yml").read_text(encoding="utf-8"))
    site = config["data_docs_sites"]["local_site"]
    site.pop("site_section_builders", None)
    site["site_index_builder"].pop("view", None)
    (target / "great_expectations.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return target


def main() -> None:
    parser = arguments(__doc__, "/tmp/data-docs-views")
    parser.add_argument("--raw", type=Path, required=True, help="a raw drop folder for `corpus validate-drop`")
    args = parser.parse_args()
    project = prepared(args)
    projects = {"gx views": with_gx_views(REPO / "gx", args.workdir.resolve() / "gx-views"), "ours": REPO / "gx"}
    commands = [["corpus", "validate", "--drop", args.drop], ["corpus", "validate-drop", str(args.raw.resolve())]]
    # The first run of each: the template cache warmed, as after a machine's first validation.
    side_by_side(project, commands, {name: (["--gx", str(gx_dir)], {}) for name, gx_dir in projects.items()},
                 args.rounds, warm_up=True)
    print(f"load average now {os.getloadavg()[0]:.1f}")
    shutil.rmtree(args.workdir.resolve())


if __name__ == "__main__":
    main()
