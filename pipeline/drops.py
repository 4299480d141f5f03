"""New corpus drops: check one before it joins the corpus, then add it.

``corpus validate-drop PATH`` runs the pipeline's own stages on the drop alone, into
``paths.validate_drop/<name>/``: ingest, clean, then the validate stage's suites
(``article_rows`` and ``article_table``; a drop may hold a few reprints of one story, up
to ``validate.drop_min_unique_text_share``). Then the dedup stage's functions say what
the drop would add: which articles the corpus already has, exactly or nearly (from the
saved index, ``paths.dedup/index``), and which duplicate another article of the drop.
Duplicates are reported, not refused: dedup removes them when the drop joins. It prints
a report (every input's outcome, quarantine reasons, a table of checks) and writes
``results.json`` and GX Data Docs next to the drop's ingest and clean outputs.

Exit status: 0 the drop is acceptable, 1 an expectation failed, 2 the input is unusable
(not a folder, or no file in it reads as an article). CI can gate on it. ``add-drop``
uses the same codes, and 2 also when it refuses NAME or DVC fails.

``corpus add-drop PATH --name NAME`` copies the drop into a staging folder, validates
that copy as drop NAME (so what is added is exactly what was checked, with the ids it
will have), then moves it to ``paths.raw/NAME``, tracks it with ``dvc add`` and appends
NAME to ``split.drop_order`` in params.yaml (the order drops arrived in, which the split
stage keeps stable): commit the ``NAME.dvc`` file and params.yaml, ``dvc push`` the drop
to the remote, and the next ``dvc repro`` ingests it. It refuses, changing nothing, when
validation fails, when NAME already exists, or when NAME is not a plain folder name
(``../x``, ``/x``, ``a/b``).

The move, ``dvc add`` and the params.yaml update are one transaction under the checkout's
lock (``.corpus.lock`` beside params.yaml; one add-drop or publish at a time: a second
add-drop waits, saying for whom). params.yaml is read again under the lock, so drops added
meanwhile and a user's edits are kept. An add-drop killed mid-way (say during ``dvc add``)
is finished or undone by the next one, which says so.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from pipeline.commands import add_parser
from pipeline.plumbing.io import copy_file, read_json, reset_dir, scan_table, storage_path, write_json, write_text
from pipeline.plumbing.locks import checkout_lock, utc_now
from pipeline.plumbing.params import ParamsError, load_params, path_of, section, with_list_item
from pipeline.plumbing.schema import QUARANTINE_REASONS
from pipeline.stages import clean, dedup, ingest, validate

EXIT_ACCEPTABLE, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2
STAGE = "validate-drop"
# A drop is one folder directly under paths.raw; DVC names its tracking file NAME.dvc.
DROP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class UnusableDrop(Exception):
    """The input cannot be read as a drop at all (exit status 2)."""


@dataclass
class DropReport:
    name: str
    path: Path
    output_dir: Path
    ingest: dict[str, Any]  # ingest report of the drop
    clean: dict[str, Any]  # clean report of the drop
    validation: validate.ValidationReport
    # Both: id, duplicate_of, similarity, kind. corpus_matches is None without an index.
    corpus_matches: pl.DataFrame | None
    drop_duplicates: pl.DataFrame  # articles that repeat another article of the drop
    index_dir: Path

    @property
    def exit_code(self) -> int:
        return EXIT_ACCEPTABLE if self.validation.success else EXIT_FAILED

    def outcomes(self) -> dict[str, int]:
        """Every input of the drop, once: what the corpus gains, duplicates, quarantine."""
        matched = 0 if self.corpus_matches is None else self.corpus_matches.height
        new = "new articles" + (" (not compared with the corpus)" if self.corpus_matches is None else "")
        counts = {new: self.clean["kept"] - matched - self.drop_duplicates.height}
        if self.corpus_matches is not None:
            counts |= _by_kind("already in the corpus", self.corpus_matches)
        counts |= _by_kind("repeat another article of the drop", self.drop_duplicates)
        counts["quarantined"] = self.ingest["quarantined"] + self.clean["quarantined"]
        return counts

    def quarantine_reasons(self) -> dict[str, int]:
        reasons: dict[str, int] = {}
        for report in (self.ingest, self.clean):
            for reason, count in report["quarantined_by_reason"].items():
                reasons[reason] = reasons.get(reason, 0) + count
        return dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0])))

    def to_json(self) -> dict[str, Any]:
        matches = self.corpus_matches
        return self.validation.to_json() | {
            "drop": {
                "name": self.name,
                "path": str(self.path),
                "inputs": self.ingest["inputs"],
                "kept": self.clean["kept"],
                "outcomes": self.outcomes(),
                "quarantine_reasons": self.quarantine_reasons(),
                "corpus_index": str(self.index_dir) if matches is not None else None,
                "already_in_corpus": None if matches is None else matches.sort("id").to_dicts(),
                "repeat_within_drop": self.drop_duplicates.sort("id").to_dicts(),
            }
        }

    def render(self) -> str:
        lines = [f"Drop '{self.name}' ({self.path}): {self.ingest['inputs']:,} inputs"]
        for outcome, count in self.outcomes().items():
            lines.append(f"  {outcome:<44}{count:>7,}")
        for reason, count in self.quarantine_reasons().items():
            lines.append(f"    {reason:<42}{count:>7,}  {QUARANTINE_REASONS.get(reason, '')}")
        if self.corpus_matches is None:
            lines.append(f"  no corpus index at {self.index_dir}: run `dvc pull` or `dvc repro` to compare with the corpus")
        checks = self.validation.checks
        lines += ["", f"Checks: {len(checks) - len(self.validation.failed)} of {len(checks)} passed"]
        for check in checks:
            status = "ok  " if check.success else "FAIL"
            detail = f"  {check.outcome()}" if not check.success else ""
            lines.append(f"  {status}  {check.suite:<14}{check.description}{detail}")
            lines += [f"          {line}" for line in check.example_lines()]
        verdict = "acceptable" if self.validation.success else f"FAILED ({len(self.validation.failed)} expectations)"
        lines += [
            "",
            f"Result: {verdict}, exit {self.exit_code}",
            f"Report: {self.output_dir / validate.RESULTS_FILE}   Data Docs: {self.output_dir / validate.DATA_DOCS_DIR / 'index.html'}",
        ]
        return "\n".join(lines)


def validate_drop(
    drop_dir: Path, output_dir: Path, params: dict[str, Any], gx_dir: Path, index_dir: Path, source: Path | None = None
) -> DropReport:
    """Ingest, clean and validate one drop folder on its own; compare it with the corpus.
    `source` is the folder the user named when `drop_dir` is a staged copy of it."""
    drop_dir = drop_dir.resolve()
    if not drop_dir.is_dir():
        raise UnusableDrop(f"{drop_dir} is not a folder")
    if drop_dir.name.startswith("."):
        raise UnusableDrop(f"{drop_dir} is a hidden folder, which ingest skips: the pipeline would never read it as a "
                           "drop. Rename it, or add it under a name of your choice with `corpus add-drop PATH --name NAME`")
    output_dir.mkdir(parents=True, exist_ok=True)
    ingest_dir, clean_dir = output_dir / "ingest", output_dir / "clean"
    ingested = ingest.run(drop_dir.parent, ingest_dir, None, section(params, "ingest"), [drop_dir.name])
    if ingested.articles == 0:
        reasons = ingested.report["quarantined_by_reason"]
        found = f"{ingested.report['inputs']} inputs, all quarantined: {reasons}" if reasons else "it holds no files"
        raise UnusableDrop(f"no readable article in {drop_dir} ({found})")
    cleaned = clean.run(ingest_dir, clean_dir, None, params)
    articles = scan_table(clean_dir / "articles.parquet")
    validation = validate.run_suites(articles, validate.DROP, params, gx_dir, output_dir, stage=STAGE)
    with dedup.SignedArticles.of(articles, dedup.DedupParams.from_params(params)) as signed:  # once for both
        matches = dedup.match_against_index(articles, index_dir, params, signed) if index_dir.is_dir() else None
        repeats = drop_duplicates(articles, matches, params, signed)
    report = DropReport(
        drop_dir.name, (source or drop_dir).resolve(), output_dir, ingested.report, cleaned, validation,
        matches, repeats, index_dir,
    )
    write_json(output_dir / validate.RESULTS_FILE, report.to_json())
    return report


def drop_duplicates(articles: pl.LazyFrame, corpus_matches: pl.DataFrame | None, params: dict[str, Any],
                    signed: dedup.SignedArticles | None = None) -> pl.DataFrame:
    """Articles the corpus does not have that repeat another article of the drop, by the
    dedup stage's own rule: the rest of the drop is what it adds to the corpus. With
    ``signed`` (the drop's articles signed already), they are not signed again."""
    if corpus_matches is not None:
        articles = articles.filter(~pl.col("id").is_in(corpus_matches["id"].implode()))
    if articles.select(pl.len()).collect().item() == 0:
        return pl.DataFrame(schema=dedup.MATCH_SCHEMA)
    assignment = dedup.deduplicate(articles, dedup.DedupParams.from_params(params), presigned=signed).assignment
    return assignment.filter(pl.col("kind").is_not_null()).select(dedup.MATCH_SCHEMA.names()).sort("id")


def _by_kind(outcome: str, duplicates: pl.DataFrame) -> dict[str, int]:
    counts = dict(duplicates.group_by("kind").len().iter_rows())
    return {f"{outcome}: {kind}": counts.get(kind, 0) for kind in ("exact", "near")}


# ---------------------------------------------------------------------------- add-drop


def name_problem(name: str, raw_dir: Path) -> str | None:
    """Why NAME cannot be a new drop under raw_dir (None when it can)."""
    if not DROP_NAME.fullmatch(name) or name.endswith(".dvc"):
        return (f"'{name}' is not a drop name: use one plain folder name of letters, digits, '.', '_' and '-' "
                "(no '/', no '..', not absolute, not ending in .dvc)")
    if (raw_dir / name).exists() or (raw_dir / f"{name}.dvc").exists():
        return f"{raw_dir / name} already exists: a drop is never replaced, pick another name"
    return None


def copy_drop(source: Path, destination: Path) -> None:
    """Copy the files of a drop (contents only: a read-only source gives a writable copy).
    A link is copied as the file it leads to inside the drop; one that leaves the drop,
    dangles or loops refuses the drop: nothing outside it is ever copied."""
    root = source.resolve()
    destination.mkdir(parents=True)
    for path in sorted(root.rglob("*")):
        try:
            real = ingest.resolve_inside(path, root)
        except ingest.Rejected as link:
            raise UnusableDrop(f"{source / path.relative_to(root)} is {link.detail}; "
                               "a drop must hold its files, not links out of it") from None
        target = destination / path.relative_to(root)
        if real.is_dir():
            target.mkdir(exist_ok=True)
        elif real.is_file():
            copy_file(real, target)


def _dvc(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *command], capture_output=True, text=True)


# An add-drop that moved its drop into the raw area and has not finished: a record in the
# folder of params.yaml (beside the checkout lock), so that the next add-drop finishes or
# undoes what a killed run left (a drop folder without its .dvc file would be ingested
# unversioned by the next `dvc repro`).
PENDING_FILE = ".corpus-add-drop.json"
LOCK_WAIT_SECONDS = 600


def install_drop(staged: Path, name: str, raw_dir: Path, params_path: Path) -> None:
    """Under the checkout lock: move the staged drop to ``raw_dir/name``, `dvc add` it and
    append it to ``split.drop_order``, params.yaml read again now so that edits made while
    the drop was validated are kept. Undone if DVC fails."""
    target = (raw_dir / name).resolve()
    gitignore = target.parent / ".gitignore"
    gitignore_before = gitignore.read_text(encoding="utf-8") if gitignore.exists() else None
    write_json(_pending_path(params_path), {
        "name": name, "target": str(target), "pid": os.getpid(), "since": utc_now(), "gitignore_before": gitignore_before,
    })
    shutil.move(staged, target)
    result = _dvc("add", str(target))
    if result.returncode != 0:
        _undo_install(target, gitignore_before)
        _pending_path(params_path).unlink()
        raise RuntimeError(f"`dvc add` failed, nothing was changed:\n{result.stdout}{result.stderr}")
    _append_to_drop_order(params_path, name)
    _pending_path(params_path).unlink()


def finish_interrupted_install(params_path: Path) -> str | None:
    """Under the checkout lock: complete or undo an add-drop that was killed mid-way.
    Returns the name of the drop it completed."""
    pending = _pending_path(params_path)
    if not pending.exists():
        return None
    record = read_json(pending)
    target, name = Path(record["target"]), record["name"]
    what = f"add-drop: the add-drop of '{name}' by pid {record['pid']} (since {record['since']}) was interrupted"
    completed = target.is_dir() and _tracked(target.with_name(f"{name}.dvc"))
    if completed:
        _append_to_drop_order(params_path, name)
        print(f"{what} after `dvc add`: completed it ({target} is tracked, and now in split.drop_order)", file=sys.stderr)
    else:
        _undo_install(target, record["gitignore_before"])
        print(f"{what} before `dvc add` finished: undone ({target} removed; the drop's source was never touched)",
              file=sys.stderr)
    pending.unlink()
    return name if completed else None


def _pending_path(params_path: Path) -> Path:
    return params_path.resolve().parent / PENDING_FILE


def _append_to_drop_order(params_path: Path, name: str) -> None:
    # The split stage anchors a group at its member from the earliest drop: the drop
    # joins split.drop_order, so the order is the order of arrival, whatever its name.
    write_text(params_path, with_list_item(params_path.read_text(encoding="utf-8"), "split", "drop_order", name))


def _tracked(dvc_file: Path) -> bool:
    """Whether `dvc add` finished writing `dvc_file` (it names the drop's content hash)."""
    try:
        outs = yaml.safe_load(dvc_file.read_text(encoding="utf-8"))["outs"]
        return bool(outs[0]["md5"])
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError):
        return False


def _undo_install(target: Path, gitignore_before: str | None) -> None:
    shutil.rmtree(target, ignore_errors=True)
    target.with_name(f"{target.name}.dvc").unlink(missing_ok=True)
    gitignore = target.parent / ".gitignore"
    if gitignore_before is None:
        gitignore.unlink(missing_ok=True)
    else:
        write_text(gitignore, gitignore_before)


def add_problem(source: Path, name: str, params_path: Path, raw_dir: Path) -> str | None:
    """Why `source` cannot be added as drop NAME (None when it can)."""
    problem = name_problem(name, raw_dir)
    if problem is None:
        try:
            with_list_item(params_path.read_text(encoding="utf-8"), "split", "drop_order", name)
        except ParamsError as error:
            problem = str(error)
    if problem is None and not Path(".dvc").is_dir():
        problem = "not at the root of a DVC repository (no .dvc folder here)"
    if problem is None and not source.is_dir():
        problem = f"{source} is not a folder"
    return problem


def add_drop(source: Path, name: str, params_path: Path, gx_dir: Path, index_dir: Path, push: bool = False) -> int:
    params = load_params(params_path)
    raw_dir = path_of(params, "raw")
    if _pending_path(params_path).exists():  # a killed add-drop's leftover may hold NAME
        with checkout_lock(params_path, LOCK_WAIT_SECONDS):
            if finish_interrupted_install(params_path) == name:  # this very drop, added but for drop_order
                return _added(name, raw_dir, params_path, push)
    if problem := add_problem(source, name, params_path, raw_dir):
        print(f"add-drop: refused: {problem}. Nothing was changed.", file=sys.stderr)
        return EXIT_UNUSABLE

    output_dir = path_of(params, "validate_drop") / name
    staging = reset_dir(output_dir / "staging")
    try:
        copy_drop(source, staging / name)
        report = validate_drop(staging / name, output_dir, params, gx_dir, index_dir, source)
        print(report.render())
        if not report.validation.success:
            print(f"add-drop: refused: the drop fails validation. Nothing was changed under {raw_dir}.", file=sys.stderr)
            return EXIT_FAILED
        with checkout_lock(params_path, LOCK_WAIT_SECONDS):
            finish_interrupted_install(params_path)
            # Checked again: another add-drop may have taken NAME while this one validated.
            if problem := add_problem(source, name, params_path, raw_dir):
                print(f"add-drop: refused: {problem}. Nothing was changed.", file=sys.stderr)
                return EXIT_UNUSABLE
            install_drop(staging / name, name, raw_dir, params_path)
    except UnusableDrop as error:
        print(f"add-drop: refused: {error}. Nothing was changed.", file=sys.stderr)
        return EXIT_UNUSABLE
    except RuntimeError as error:  # DVC failed
        print(f"add-drop: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _added(name, raw_dir, params_path, push)


def _added(name: str, raw_dir: Path, params_path: Path, push: bool) -> int:
    """Push the added drop if asked; say what to commit."""
    dvc_file = raw_dir / f"{name}.dvc"
    if push and (result := _dvc("push", str(dvc_file))).returncode != 0:
        print(f"add-drop: {raw_dir / name} is added and tracked, but `dvc push` failed (run it again):\n{result.stderr}",
              file=sys.stderr)
        return EXIT_UNUSABLE
    pushed = "pushed to the DVC remote" if push else "next: `dvc push`"
    print(
        f"\nAdded {raw_dir / name}, tracked by {dvc_file} ({pushed}), and to split.drop_order in {params_path}.\n"
        f"Commit it: git add {dvc_file} {raw_dir / '.gitignore'} {params_path} && git commit -m 'Add drop {name}'\n"
        "Then `dvc repro` builds the corpus with it."
    )
    return EXIT_ACCEPTABLE


# ---------------------------------------------------------------------------- CLI


def add_validate_command(commands) -> None:
    check = add_parser(commands, "validate-drop")
    check.add_argument("path", type=storage_path,
                       help="folder of the drop (a local path, or a URL: s3://bucket/drops/x)")
    check.add_argument("--output", type=Path, help="report folder (default: paths.validate_drop/<folder name>)")
    _common_options(check)
    check.set_defaults(handler=_validate_main)


def add_add_command(commands) -> None:
    add = add_parser(commands, "add-drop")
    add.add_argument("path", type=storage_path, help="folder of the drop (a local path, or a URL: s3://bucket/drops/x)")
    add.add_argument("--name", required=True, help="name of the new drop: the folder under paths.raw")
    add.add_argument("--push", action="store_true", help="also `dvc push` the drop to the default remote")
    _common_options(add)
    add.set_defaults(handler=_add_main)


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gx", type=Path, help="Great Expectations project folder (default: paths.gx)")
    parser.add_argument("--index", type=Path, help="the corpus's dedup index (default: paths.dedup/index)")


def _locations(args, params: dict[str, Any]) -> tuple[Path, Path]:
    return args.gx or path_of(params, "gx"), args.index or path_of(params, "dedup") / "index"


def _validate_main(args) -> int:
    params = load_params(args.params)
    gx_dir, index_dir = _locations(args, params)
    output_dir = args.output or path_of(params, "validate_drop") / args.path.resolve().name
    try:
        report = validate_drop(args.path, output_dir, params, gx_dir, index_dir)
    except UnusableDrop as error:
        print(f"validate-drop: unusable input: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(report.render())
    return report.exit_code


def _add_main(args) -> int:
    gx_dir, index_dir = _locations(args, load_params(args.params))
    return add_drop(args.path, args.name, Path(args.params), gx_dir, index_dir, args.push)
