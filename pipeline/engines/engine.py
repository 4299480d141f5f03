"""The engine interface and the choice of engine (see the package's docstring)."""

from __future__ import annotations

import argparse
import tempfile
import uuid
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol

import polars as pl

from pipeline.plumbing.io import Location, storage_path
from pipeline.plumbing.params import ParamsError

ENGINES = ("local", "ray")
DEFAULT_ENGINE = "local"

# Called once per worker process; returns the function applied to each batch and the
# number of its first row in the table.
WorkerFactory = Callable[[], Callable[[pl.DataFrame, int], Any]]


class Engine(Protocol):
    name: str

    def map_batches(self, table: pl.LazyFrame, make_worker: WorkerFactory, batch_size: int) -> Iterator[Any]:
        """``make_worker()(batch, first_row)`` for each consecutive `batch_size` rows of
        `table` (``io.batches``' slices), in their order; a table without rows is one empty
        batch, so the outputs still get their columns."""
        ...

    def map_tasks(self, work: Callable[[Any, Any], Any], shared: Any, items: Iterable[Any]) -> Iterator[Any]:
        """``work(shared, item)`` for each item, one task an item, in the items' order. `shared`
        (read-only: arrays, a tuple of them) goes to the workers once; `items` are read as
        tasks are started, so a generator of large items is not held whole."""
        ...


def engine_name(params: dict[str, Any], choice: str | None = None) -> str:
    """The engine to run on: `choice` (``--engine``), else params.yaml ``engine.name``, else local."""
    if choice is None:
        section = params.get("engine", {})
        if not isinstance(section, dict):
            raise ParamsError("params.yaml 'engine' must be a mapping, e.g. {name: local}")
        choice = section.get("name", DEFAULT_ENGINE)
    if choice not in ENGINES:
        raise ParamsError(f"params.yaml 'engine.name' must be one of {', '.join(ENGINES)}, not {choice!r}")
    return choice


def engine_scratch(params: dict[str, Any]) -> str:
    """params.yaml ``engine.scratch``: where ``shared_folder`` makes its folders ("": the system's temporary folder)."""
    engine_name(params)  # the section is a mapping
    scratch = params.get("engine", {}).get("scratch") or ""
    if not isinstance(scratch, str):
        raise ParamsError(f"params.yaml 'engine.scratch' must be a path or URL, not {scratch!r}")
    return scratch


@contextmanager
def shared_folder(where: str) -> Iterator[Path | Location]:
    """A new folder for the files a stage's tasks hand each other (dedup's LSH band
    partitions), inside `where` (``engine_scratch``: a path every worker reads and writes,
    or a URL; empty: the system's temporary folder, which is one machine's), deleted on exit."""
    base = storage_path(where) if where else Path(tempfile.gettempdir())
    made = isinstance(base, Path) and not base.exists()
    try:  # a folder that cannot be made, a URL of an unknown scheme: said before any task runs
        if isinstance(base, Path):
            base.mkdir(parents=True, exist_ok=True)
        else:
            base.exists()  # resolves its file system
    except (OSError, ValueError) as error:
        raise ParamsError(f"params.yaml 'engine.scratch' ({where}) cannot hold the tasks' files: {error}") from None
    if isinstance(base, Location):
        folder = base / f"corpus-shared-{uuid.uuid4().hex}"
        try:
            yield folder
        finally:
            if folder.exists():  # (nothing is there when no task wrote)
                folder.filesystem.delete_dir(folder.path)
    else:
        with tempfile.TemporaryDirectory(prefix="corpus-shared-", dir=base) as folder:
            yield Path(folder).resolve()
        if made:  # leave no empty folder behind (one that another run still uses stays)
            with suppress(OSError):
                base.rmdir()


def open_engine(params: dict[str, Any], choice: str | None = None) -> Engine:
    """The engine of `params` (or `choice`); Ray is imported only when it is chosen."""
    if engine_name(params, choice) == "ray":
        from pipeline.engines.ray import RayEngine

        return RayEngine()
    from pipeline.engines.local import LocalEngine

    return LocalEngine()


def add_engine_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=ENGINES,
                        help="run the per-batch work here (local) or on Ray (the cluster at RAY_ADDRESS, else a "
                        "local one); default: params.yaml engine.name. The outputs are the same")


def with_engine(params: dict[str, Any], choice: str | None) -> dict[str, Any]:
    """`params` with ``engine.name`` set to `choice` (a stage command's ``--engine``), if given."""
    if choice is None:
        return params
    return params | {"engine": {**params.get("engine", {}), "name": engine_name(params, choice)}}
