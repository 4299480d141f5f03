"""Reading and writing the pipeline's tables and reports, deterministically.

Tables are Parquet: a single file, or a directory of ``part-NNNNN.parquet`` files when a
stage writes in batches. Writers fix every option that could change the bytes (codec,
level, row-group size, statistics, row order), so equal inputs give byte-identical files.

Every writer writes to a hidden temporary name in the target's folder and renames it into
place once complete, so a full disk or a killed run never leaves a truncated file (or a
folder missing parts) under a name a later stage or DVC would take as finished; a failed
write raises `WriteFailed`, naming the path.

What the engines' workers read and write may also be at a URL (``s3://bucket/key``, any
file system pyarrow.fs or fsspec knows): `storage_path` gives a `Location` for a URL, a
`Path` for a local path, and readers use the two alike (see `Location`).
"""

from __future__ import annotations

import ctypes
import errno
import json
import mmap
import os
import re
import shutil
import tempfile
from contextlib import contextmanager, suppress
from functools import cached_property
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from polars.io.plugins import register_io_source

from pipeline.plumbing.progress import log

PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "statistics": True,
    # A streaming read or write holds about a row group of text: 10k articles keeps a stage's
    # peak down (dedup of 200k articles: 1.1 GiB, against 1.5 GiB with groups of 50k) at no
    # measurable cost in time.
    "row_group_size": 10_000,
}


# ---------------------------------------------------------------------------- storage


class Location:
    """A file or folder at a URL: ``s3://bucket/key`` (and ``gs://``, ``hdfs://``, which
    pyarrow.fs resolves), or any protocol an installed fsspec implementation knows. It has
    the part of `pathlib.Path`'s interface that the readers use (``/``, name, suffix,
    parent, exists, is_file, is_dir, iterdir, rglob, relative_to, stat, read_bytes,
    read_text, unlink), so the same code reads a local `Path` or a `Location`; pyarrow's
    readers and writers take it through `arrow_file`.

    Credentials and endpoint come from the usual places of the file system: for S3 the AWS
    environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION,
    AWS_ENDPOINT_URL) or ``~/.aws``. A Location is pickled as its URL: a worker of another
    process or node resolves the file system, and its own credentials, where it runs.

    An object store has no folders, links, pipes or renames: a "folder" is a key prefix
    (``mkdir`` makes nothing), a file appears whole when its upload completes (see
    `ParquetAppender`)."""

    def __init__(self, url: str, resolved: tuple[pafs.FileSystem, str] | None = None,
                 info: pafs.FileInfo | None = None) -> None:
        self.url = url.rstrip("/")
        if resolved is not None:
            self.__dict__["_resolved"] = resolved
        if info is not None:
            self.__dict__["_info"] = info

    @cached_property
    def _resolved(self) -> tuple[pafs.FileSystem, str]:
        try:
            return pafs.FileSystem.from_uri(self.url)
        except pa.ArrowInvalid:  # a scheme Arrow does not know: an fsspec implementation's
            import fsspec

            filesystem, path = fsspec.core.url_to_fs(self.url)
            return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem)), path

    @property
    def filesystem(self) -> pafs.FileSystem:
        return self._resolved[0]

    @property
    def path(self) -> str:
        """The path in `filesystem` (for S3, ``bucket/key``)."""
        return self._resolved[1]

    @cached_property
    def _info(self) -> pafs.FileInfo:
        return self.filesystem.get_file_info(self.path)

    def _child(self, relative: str, info: pafs.FileInfo | None = None) -> "Location":
        # The file system is resolved once, by the first Location that touches storage.
        resolved = (self.filesystem, f"{self.path}/{relative}") if "_resolved" in self.__dict__ else None
        return Location(f"{self.url}/{relative}", resolved, info)

    def __truediv__(self, relative: str | PurePosixPath) -> "Location":
        return self._child(str(relative).strip("/"))

    def __reduce__(self):
        return Location, (self.url,)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Location) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __lt__(self, other: "Location") -> bool:
        return self.url < other.url

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"Location({self.url!r})"

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    @property
    def parent(self) -> "Location":
        resolved = (self.filesystem, self.path.rsplit("/", 1)[0]) if "_resolved" in self.__dict__ else None
        return Location(self.url.rsplit("/", 1)[0], resolved)

    def resolve(self) -> "Location":
        return self

    def exists(self) -> bool:
        return self._info.type != pafs.FileType.NotFound

    def is_file(self) -> bool:
        return self._info.type == pafs.FileType.File

    def is_dir(self) -> bool:
        return self._info.type == pafs.FileType.Directory

    def is_symlink(self) -> bool:
        return False

    def stat(self) -> SimpleNamespace:
        if not self.exists():
            raise FileNotFoundError(f"{self.url} does not exist")
        return SimpleNamespace(st_size=self._info.size)

    lstat = stat

    def relative_to(self, other: "Location") -> PurePosixPath:
        if not self.url.startswith(f"{other.url}/"):
            raise ValueError(f"{self.url} is not inside {other.url}")
        return PurePosixPath(self.url[len(other.url) + 1:])

    def _listed(self, recursive: bool) -> list["Location"]:
        selector = pafs.FileSelector(self.path, recursive=recursive)
        return [self._child(info.path[len(self.path) + 1:], info) for info in self.filesystem.get_file_info(selector)]

    def iterdir(self) -> Iterator["Location"]:
        return iter(self._listed(recursive=False))

    def rglob(self, pattern: str) -> Iterator["Location"]:
        """Everything below this folder (only the pattern ``*``: what the readers use)."""
        if pattern != "*":
            raise ValueError(f"Location.rglob takes '*' only, not {pattern!r}")
        return iter(self._listed(recursive=True))

    def open(self, mode: str = "rb") -> Any:
        """A binary stream of the object: read ("rb"), or written ("wb"; on an object store the
        object appears whole when the stream is closed)."""
        if mode == "rb":
            return self.filesystem.open_input_stream(self.path)
        if mode == "wb":
            return self.filesystem.open_output_stream(self.path)
        raise ValueError(f"Location.open takes 'rb' or 'wb', not {mode!r}")

    def read_bytes(self) -> bytes:
        with self.open("rb") as stream:
            return stream.readall()

    def write_bytes(self, data: bytes) -> None:
        with self.open("wb") as stream:
            stream.write(data)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to make: an object store's folders are the prefixes of its keys."""

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.filesystem.delete_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise


def arrow_file(path: Path | Location) -> tuple[str | Path, pafs.FileSystem | None]:
    """`path` as pyarrow's readers and writers take it: a path and its file system (None:
    the local one)."""
    return (path.path, path.filesystem) if isinstance(path, Location) else (path, None)


def copy_file(source: Path | Location, target: Path) -> None:
    """The file `source`, local or at a URL, copied to the local path `target`."""
    if isinstance(source, Path):
        shutil.copyfile(source, target)
    else:
        pafs.copy_files(source.path, str(target), source_filesystem=source.filesystem,
                        destination_filesystem=pafs.LocalFileSystem())


URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def storage_path(where: str | os.PathLike) -> Path | Location:
    """A URL (``s3://bucket/drops/x``) as a `Location`, a local path (or a ``file://`` URL)
    as a `Path`: ``Path("s3://b/x")`` would be the local path ``s3:/b/x``."""
    if isinstance(where, (Path, Location)):
        return where
    text = os.fspath(where)
    if text.startswith("file://"):
        return Path(text.removeprefix("file://"))
    return Location(text) if URL.match(text) else Path(text)


def scan_table(path: str | Path | Location) -> pl.LazyFrame:
    """Lazily scan a Parquet file or a directory of Parquet part files, local or at a URL
    (Polars reads ``s3://`` itself, with the same AWS environment variables; an engine's
    worker that collects its slice of the scan reads the URL where it runs)."""
    path = storage_path(path)
    if path.is_dir():
        parts = (sorted(path.glob("*.parquet")) if isinstance(path, Path)
                 else sorted(part.url for part in path.iterdir() if part.suffix == ".parquet" and part.is_file()))
        if not parts:
            raise FileNotFoundError(f"{path} holds no .parquet files")
        return pl.scan_parquet(parts)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist (has the previous stage run?)")
    return pl.scan_parquet(str(path) if isinstance(path, Location) else path)


class WriteFailed(Exception):
    """An output could not be written (disk full, file size limit, permissions...)."""


# Polars reports an I/O failure as a ComputeError whose text ends in "(os error N)", except
# when the file system fails it while it writes a Parquet footer ("Invalid thrift: transport
# error"): then writing more to the unfinished file tells the cause.
_POLARS_OS_ERROR = re.compile(r"\(os error (\d+)\)")
PROBE_BYTES = 1 << 20


def _os_errno(error: BaseException, temporaries: list[Path]) -> int | None:
    """The OS error behind a failed write, if it is one."""
    if isinstance(error, OSError):
        return error.errno
    if not isinstance(error, pl.exceptions.PolarsError):
        return None
    if match := _POLARS_OS_ERROR.search(str(error)):
        return int(match.group(1))
    for temporary in temporaries:
        probe = temporary / ".write-probe" if temporary.is_dir() else temporary
        try:
            with probe.open("ab") as handle:
                handle.write(bytes(PROBE_BYTES))
        except OSError as failure:
            return failure.errno
    return None


def _temporary_name(path: Path) -> Path:
    # Hidden and not ending in .parquet: no reader's glob picks it up, even if a kill leaves it.
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextmanager
def _written_in_place_of(paths: list[Path]) -> Iterator[list[Path]]:
    """Temporary paths for `paths` (same folders), renamed onto them when the block ends
    without error (see `_failure_named` otherwise)."""
    temporaries = [_temporary_name(path) for path in paths]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    with _failure_named(paths, temporaries):
        yield temporaries
    for temporary, path in zip(temporaries, paths):
        os.replace(temporary, path)


@contextmanager
def _failure_named(paths: list[Path], temporaries: list[Path]) -> Iterator[None]:
    """On any error, remove `temporaries`; an I/O error is raised as `WriteFailed`."""
    try:
        yield
    except BaseException as error:
        code = _os_errno(error, temporaries)
        for temporary in temporaries:
            _remove(temporary)
        if code is None:
            raise
        reason = os.strerror(code) + (f" ({errno.errorcode[code]})" if code in errno.errorcode else "")
        raise WriteFailed(f"could not write {', '.join(map(str, paths))}: {reason}; "
                          "nothing was left under that name") from error


def _remove(path: Path | Location) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_table(frame: pl.LazyFrame | pl.DataFrame, path: str | Path) -> Path:
    """Write one Parquet file, streaming when given a LazyFrame (row order is kept)."""
    path = Path(path)
    with _written_in_place_of([path]) as (temporary,):
        _write_parquet(frame, temporary)
    return path


def _write_parquet(frame: pl.LazyFrame | pl.DataFrame, path: Path) -> None:
    if isinstance(frame, pl.LazyFrame):
        frame.sink_parquet(path, maintain_order=True, engine="streaming", **PARQUET_OPTIONS)
    else:
        frame.write_parquet(path, **PARQUET_OPTIONS)


class ParquetAppender:
    """One Parquet file written a DataFrame at a time, in row groups of ``PARQUET_OPTIONS``
    whatever the sizes of the frames: the file depends on its rows only, and memory holds a
    frame and a row group. (A streaming sink of a scan reads ahead of its writer: sinking
    cleaned articles peaked at 0.3 GB for 30k of them, 0.66 GB for 184k, 0.83 GB for 736k.)
    A file of another kind (the published shards) gives its Arrow schema, row-group size and
    `pyarrow.parquet.ParquetWriter` options.

    At a URL (a `Location`) the file is written to its final key, with no temporary name
    (an object store cannot rename): it is uploaded as it is written (one PUT, or a
    multipart upload for a large one), and the store makes an object visible only when
    its upload completes, on closing, after the footer. So the file is complete or absent:
    a write that fails is closed and its key deleted; a killed writer never completes its
    upload (its parts stay invisible; S3's AbortIncompleteMultipartUpload lifecycle rule
    removes them)."""

    def __init__(self, path: str | Path | Location, schema: pl.Schema | pa.Schema, row_group_rows: int | None = None,
                 **writer_options: Any) -> None:
        self._path = storage_path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._temporary = self._path if isinstance(self._path, Location) else _temporary_name(self._path)
        self._schema = schema if isinstance(schema, pa.Schema) else pl.DataFrame(schema=schema).to_arrow().schema
        self._pending = pa.Table.from_batches([], schema=self._schema)  # (Schema.empty_table imports pandas: 1-2 s)
        self._rows = row_group_rows or PARQUET_OPTIONS["row_group_size"]
        target, filesystem = arrow_file(self._temporary)
        with self._on_failure():
            self._writer = pq.ParquetWriter(
                target,
                self._schema,
                filesystem=filesystem,
                **(writer_options or {"compression": PARQUET_OPTIONS["compression"],
                                      "compression_level": PARQUET_OPTIONS["compression_level"],
                                      "write_statistics": PARQUET_OPTIONS["statistics"]}),
            )

    def append(self, frame: pl.DataFrame) -> None:
        # Arrow's strings are copies: rows waiting for a full row group do not hold on to
        # the text of the whole batch they were filtered from (Polars' string views would).
        self._pending = pa.concat_tables([self._pending, frame.to_arrow().cast(self._schema)])
        with self._on_failure():
            while self._pending.num_rows >= self._rows:
                self._write(self._pending.slice(0, self._rows))
                self._pending = self._pending.slice(self._rows)

    def _write(self, rows: pa.Table) -> None:
        # One chunk a column: Arrow writes pages chunk by chunk, and the frames' sizes would
        # change the bytes.
        self._writer.write_table(rows.combine_chunks(), row_group_size=self._rows)

    def _on_failure(self):
        return _failure_named([self._path], [self._temporary])

    def __enter__(self) -> "ParquetAppender":
        return self

    def __exit__(self, exc_type, error, traceback) -> None:
        if error is not None:  # the file stays unfinished: not renamed into place (at a URL: deleted once closed)
            with suppress(OSError):  # the disk that failed a write may fail the footer too
                self._writer.close()
            _remove(self._temporary)
            return
        with self._on_failure():
            if self._pending.num_rows:
                self._write(self._pending)
            self._writer.close()
        if self._temporary != self._path:
            os.replace(self._temporary, self._path)


class NpyTableAppender:
    """A table in groups (e.g. hash partitions, in ascending order), written a DataFrame of
    one group at a time as uncompressed arrays to be read in place (`NpyTable`): one .npy
    file a column, ``<folder>/<name>.<column>.npy`` (an Enum column as its codes), and
    ``<name>.starts.npy``, the row where each of the ``groups`` groups starts (and the
    total). The bytes depend on the rows alone: a column's header, which numpy pads to the
    same length for any row count, is written again with the count when the table is
    closed. Written to temporary names, renamed into place when complete."""

    def __init__(self, folder: Path, name: str, schema: pl.Schema, groups: int) -> None:
        self._schema = schema
        self._paths = [folder / f"{name}.{column}.npy" for column in schema] + [folder / f"{name}.starts.npy"]
        self._temporaries = [_temporary_name(path) for path in self._paths]
        self._dtypes = [pl.Series(dtype=dtype).to_physical().to_numpy().dtype for dtype in schema.values()]
        self._rows_by_group = np.zeros(groups, np.uint64)
        self._last_group = 0
        folder.mkdir(parents=True, exist_ok=True)
        with _failure_named(self._paths, self._temporaries):
            self._files = [temporary.open("wb") for temporary in self._temporaries[:-1]]
            for file, dtype in zip(self._files, self._dtypes):
                _write_npy_header(file, dtype, 0)

    def append(self, frame: pl.DataFrame, group: int) -> None:
        if group < self._last_group:
            raise ValueError(f"group {group} appended after group {self._last_group}: groups go in ascending order")
        self._last_group = group
        self._rows_by_group[group] += frame.height
        with _failure_named(self._paths, self._temporaries):
            for file, column, dtype in zip(self._files, self._schema, self._dtypes):
                file.write(frame[column].to_physical().to_numpy().astype(dtype, copy=False).tobytes())

    def __enter__(self) -> "NpyTableAppender":
        return self

    def __exit__(self, exc_type, error, traceback) -> None:
        if error is not None:  # the files stay unfinished: removed, not renamed into place
            for file in self._files:
                with suppress(OSError):
                    file.close()
            for temporary in self._temporaries:
                _remove(temporary)
            return
        with _failure_named(self._paths, self._temporaries):
            rows = int(self._rows_by_group.sum())
            for file, dtype in zip(self._files, self._dtypes):
                file.seek(0)
                _write_npy_header(file, dtype, rows)
                file.close()
            with self._temporaries[-1].open("wb") as file:  # (given a name, np.save adds ".npy" to it)
                np.save(file, np.concatenate([[0], np.cumsum(self._rows_by_group)]).astype(np.uint64))
        for temporary, path in zip(self._temporaries, self._paths):
            os.replace(temporary, path)


def _write_npy_header(file, dtype: np.dtype, rows: int) -> None:
    np.lib.format.write_array_header_1_0(file, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                                                "shape": (rows,)})


class NpyTable:
    """A table written by `NpyTableAppender`, its columns memory-mapped: a search or a gather
    reads the pages it touches, not the table, and `release` drops a range of rows' pages
    from the process's memory (they stay in the page cache). ``ValueError`` names a file
    that is missing or not such a column."""

    def __init__(self, folder: Path, name: str, schema: pl.Schema) -> None:
        self._schema = schema
        self._maps: list[tuple[mmap.mmap, int, int]] = []  # a column's map, where its rows start, a row's bytes
        try:
            self.starts = np.load(folder / f"{name}.starts.npy")
            self.columns = {column: self._mapped(folder / f"{name}.{column}.npy") for column in schema}
        except (OSError, ValueError) as error:
            raise ValueError(f"{folder / name}: unreadable ({error})") from None
        if self.starts.ndim != 1 or any(len(array) != self.starts[-1] for array in self.columns.values()):
            raise ValueError(f"{folder / name}: its columns do not hold the rows its starts say")

    def _mapped(self, path: Path) -> np.ndarray:
        with path.open("rb") as file:
            if np.lib.format.read_magic(file) != (1, 0):
                raise ValueError(f"{path.name} is not a column written by NpyTableAppender")
            shape, _, dtype = np.lib.format.read_array_header_1_0(file)
            offset = file.tell()
            if len(shape) != 1 or offset + shape[0] * dtype.itemsize != os.fstat(file.fileno()).st_size:
                raise ValueError(f"{path.name}: its size is not that of its {shape} rows")
            if not shape[0]:
                return np.zeros(0, dtype)
            mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        self._maps.append((mapped, offset, dtype.itemsize))
        # A plain array over the map (a numpy memmap's slicing costs more than searching a small partition).
        return np.frombuffer(mapped, dtype, count=shape[0], offset=offset)

    def release(self, rows: slice | None = None) -> None:
        """Drop the pages of these rows (default: all) from the process's resident memory."""
        rows = rows or slice(0, int(self.starts[-1]))
        for mapped, offset, itemsize in self._maps:
            first = (offset + rows.start * itemsize) // mmap.PAGESIZE * mmap.PAGESIZE
            end = min(offset + rows.stop * itemsize, len(mapped))
            if end > first:
                mapped.madvise(mmap.MADV_DONTNEED, first, end - first)

    def group(self, group: int) -> slice:
        return slice(int(self.starts[group]), int(self.starts[group + 1]))

    def frame(self, columns: dict[str, np.ndarray]) -> pl.DataFrame:
        """Values of the table's columns (e.g. gathered from ``columns``), as a frame of its schema."""
        return pl.DataFrame({
            column: (pl.Series(dtype.categories, dtype=dtype).gather(columns[column])
                     if isinstance(dtype, pl.Enum) else pl.Series(columns[column], dtype=dtype))
            for column, dtype in self._schema.items()
        })


@contextmanager
def scratch_folder(near: str | Path) -> Iterator[Path]:
    """A folder for a stage's intermediate files, next to `near` (same disk), removed
    afterwards."""
    Path(near).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".scratch-", dir=near) as scratch:
        yield Path(scratch)


def write_scratch(table: pl.DataFrame, path: Path) -> None:
    """An intermediate file of a stage (in its ``scratch_folder``), read once, soon after:
    LZ4 without statistics, half the CPU of the outputs' zstd to write and to read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table.write_parquet(path, compression="lz4", statistics=False)


def write_parts(batches: Iterable[pl.DataFrame], directory: str | Path, schema: pl.Schema) -> int:
    """Write batches as ``part-00000.parquet``, ``part-00001.parquet``...; returns rows.

    An empty input still writes one empty part, so readers always find the schema. The
    parts go to a temporary folder beside `directory`, which replaces it when all are written.
    """
    directory = Path(directory)
    with _written_in_place_of([directory]) as (temporary,):
        reset_dir(temporary)
        rows = parts = 0
        for batch in batches:
            _write_parquet(batch, temporary / f"part-{parts:05d}.parquet")
            rows += batch.height
            parts += 1
        if parts == 0:
            _write_parquet(pl.DataFrame(schema=schema), temporary / "part-00000.parquet")
        _remove(directory)  # os.replace onto a folder needs it gone
    return rows


def reset_dir(directory: str | Path) -> Path:
    """An empty directory at `directory` (its previous content removed)."""
    directory = Path(directory)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory


def keep_only(directory: str | Path, kept: Iterable[Path]) -> Path:
    """`directory` (made if missing) holding only the entries `kept` of it, everything else
    removed: a folder kept between runs (a DVC ``persist`` output) that must hold no more
    than a run from an empty one writes (a drop no longer listed, what an older layout left)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in set(directory.iterdir()) - set(kept):
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    return directory


def write_json(path: str | Path, data: Any) -> Path:
    """Pretty, key-sorted JSON with a trailing newline (stable diffs in git)."""
    return write_text(path, json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n")


def write_text(path: str | Path, text: str) -> Path:
    """A UTF-8 text file, replaced whole (a reader sees the old file or the new one)."""
    path = Path(path)
    with _written_in_place_of([path]) as (temporary,):
        temporary.write_text(text, encoding="utf-8")
    return path


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# A stage's full report, inside its output folder (a DVC output, cached).
REPORT_FILE = "report.json"


def write_stage_report(
    report: dict[str, Any], output_dir: Path, metrics_path: Path | None, headline: dict[str, str]
) -> None:
    """Write a stage's full `report` to ``<output_dir>/report.json`` and, at `metrics_path`,
    its headline figures (see `headline_figures`): the DVC metric. DVC shows every leaf of
    every metrics file as a column, so the metric stays a few numbers whose names the stages
    share (input, articles, quarantined...): `dvc metrics show` is one funnel table. The
    one nested figure is ``quarantine`` of ingest and clean, the count per reason that
    occurred (a ``quarantine.<reason>`` column each)."""
    write_json(output_dir / REPORT_FILE, report)
    if metrics_path:
        write_json(metrics_path, headline_figures(report, headline))


def headline_figures(report: dict[str, Any], headline: dict[str, str]) -> dict[str, Any]:
    """``{name: value}`` for each `headline` entry ``name: "dotted.key.path"`` of `report`."""
    figures = {}
    for name, dotted in headline.items():
        value: Any = report
        for key in dotted.split("."):
            value = value[key]
        figures[name] = value
    return figures


def table_rows(path: str | Path) -> int:
    """Rows of a Parquet table (a file or a folder of parts), read from the files' metadata."""
    return scan_table(path).select(pl.len()).collect().item()


# ---------------------------------------------------------------------------- partitions
# The stages write one folder a drop, ``<stage output>/drop=<name>/``, so a new drop is
# processed alone and every other drop's folder is reused while its fingerprint holds.
# A project run (no --input) reads exactly the drops of ``split.drop_order``, in its order,
# and removes the folders of drops no longer listed from its outputs (``keep_listed_drops``);
# a run on a folder given with --input reads the drops it finds there.
PARTITION_PREFIX = "drop="


def partition(base: str | Path, drop: str) -> Path:
    """The folder of one drop's outputs under a stage's output folder."""
    return Path(base) / f"{PARTITION_PREFIX}{drop}"


def partition_drops(base: str | Path, drop_order: Iterable[str], listed_only: bool = False) -> list[str]:
    """The drops of a run over `base`: with `listed_only` (a project run) exactly those of
    `drop_order` (``require_partitions`` checks they are built); otherwise (a folder given
    with --input) those with a partition under `base`, those of `drop_order` in its order,
    then the others by name."""
    if listed_only:
        return list(dict.fromkeys(drop_order))
    base = Path(base)
    found = {p.name.removeprefix(PARTITION_PREFIX) for p in base.glob(f"{PARTITION_PREFIX}*") if p.is_dir()}
    listed = [drop for drop in dict.fromkeys(drop_order) if drop in found]
    return listed + sorted(found - set(listed))


def unlisted_partitions(directory: str | Path, drops: Iterable[str]) -> list[Path]:
    """The partition folders under `directory` of drops not among `drops`."""
    kept = {f"{PARTITION_PREFIX}{drop}" for drop in drops}
    return sorted(p for p in Path(directory).glob(f"{PARTITION_PREFIX}*") if p.name not in kept)


def keep_listed_drops(stage: str, directories: str | Path | Iterable[Path], drops: Iterable[str]) -> None:
    """``keep_only`` the partitions of `drops` in each of `directories`, a stage's outputs kept
    between runs: a drop taken out of ``split.drop_order`` leaves the corpus, and one line
    says so."""
    directories = [Path(directories)] if isinstance(directories, (str, Path)) else [Path(d) for d in directories]
    drops, gone = list(drops), set()
    for directory in directories:
        gone |= {p.name.removeprefix(PARTITION_PREFIX) for p in unlisted_partitions(directory, drops)}
        keep_only(directory, [partition(directory, drop) for drop in drops])
    if gone:
        log(stage, f"drop(s) no longer in split.drop_order, removed from {', '.join(map(str, directories))}: "
                   f"{', '.join(sorted(gone))}")


def require_partitions(base: str | Path, drops: Iterable[str], table: str, made_by: str) -> None:
    """Every one of `drops` has `table` (a file or folder name) in its partition under `base`,
    or a ValueError naming the first that has not and what to run: `made_by`, the command
    that writes it (``{drop}`` standing for the drop's name). A command reading the drops
    of ``split.drop_order`` checks first, so a drop not built that far stops it before it
    writes anything, rather than being left out of its output unnoticed."""
    for drop in drops:
        needed = partition(base, drop) / table
        if not needed.exists():
            raise ValueError(f"drop {drop} is not built up to here: {needed} does not exist; "
                             f"run `{made_by.format(drop=drop)}` first (or `dvc repro`)")


def scan_partitions(base: str | Path, drop_order: Iterable[str], table: str, listed_only: bool = False) -> pl.LazyFrame:
    """`table` (a file or folder name) of the drops of a run over `base` (``partition_drops``),
    in drop order; `base` itself, or its `table`, when `base` is not partitioned (a stage run
    on one table)."""
    base = Path(base)
    drops = partition_drops(base, drop_order, listed_only) if base.is_dir() else []
    if not drops:
        return scan_table(base / table if (base / table).exists() else base)
    return pl.concat([scan_table(partition(base, drop) / table) for drop in drops], how="vertical")


def partition_report(stage_dir: str | Path, drops: Iterable[str] | None = None) -> dict[str, Any]:
    """A stage's report.json, or for a stage written drop by drop the sum of its drops'
    reports (counts add up; nested counts add up key by key): those of `drops` (a project's
    ``split.drop_order``), or of every partition found."""
    stage_dir = Path(stage_dir)
    drops = partition_drops(stage_dir, drops or (), listed_only=drops is not None)
    if (stage_dir / REPORT_FILE).exists() or not drops:
        return read_json(stage_dir / REPORT_FILE)
    return sum_reports(read_json(partition(stage_dir, drop) / REPORT_FILE) for drop in drops)


def sum_reports(reports: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Reports of the same shape summed: numbers add, mappings merge key by key."""
    total: dict[str, Any] = {}
    for report in reports:
        for key, value in report.items():
            if key not in total:
                total[key] = value
            elif isinstance(value, dict):
                total[key] = sum_reports([total[key], value])
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                total[key] += value
            elif total[key] != value:
                raise ValueError(f"reports disagree on {key!r}: {total[key]!r} and {value!r}")
    return total


def batches(frame: pl.LazyFrame, size: int, at_least_one: bool = False) -> Iterator[pl.DataFrame]:
    """Consecutive slices of ``frame``, each computed only when asked for. (The streaming
    engine's own ``collect_batches`` runs ahead of a slower consumer and its batches pile
    up: memory then grows with the corpus.) With `at_least_one`, a frame without rows
    gives one empty batch, for a consumer whose outputs must still get their columns."""
    rows = frame.select(pl.len()).collect().item()
    if rows == 0 and at_least_one:
        yield frame.head(0).collect()
    for offset in range(0, rows, size):
        yield frame.slice(offset, size).collect(engine="streaming")
        _return_freed_memory()


def lazy_frames(frames: Callable[[], Iterable[pl.DataFrame]], schema: pl.Schema) -> pl.LazyFrame:
    """A lazy frame of the rows of ``frames()`` (frames computed in Python one at a time, say
    a batch of a scan joined with a table in memory), for a streaming sink: the sink pulls a
    frame when it has room, so memory holds a few frames, not the table, and the file has
    the bytes of the same rows sunk from one frame. (A streaming left join of a scan with a
    frame, order kept, held the whole scan: 1.3 GB for 300k articles of 2,300 characters.)"""

    def source(columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None, _: int | None):
        left = n_rows
        for frame in frames():
            if predicate is not None:
                frame = frame.filter(predicate)
            if columns is not None:
                frame = frame.select(columns)
            if left is not None:
                frame = frame.head(left)
                left -= frame.height
            yield frame
            if left == 0:
                return

    return register_io_source(source, schema=schema)


def _return_freed_memory() -> None:
    """Give the memory of a finished batch back to the system (see ``_glibc``)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


M_MMAP_THRESHOLD = -3  # mallopt parameter (malloc.h)
MMAP_THRESHOLD_BYTES = 1 << 20


def _glibc() -> ctypes.CDLL | None:
    """glibc, set up so that batch-sized blocks go back to the system when freed. By default
    glibc raises its mmap threshold after each large free (up to 32 MiB), so the arrays of
    the next batches come from the heap, whose freed blocks it keeps: the resident size then
    crept up by about 3 KB an article, batch after batch. A fixed threshold keeps every
    block over 1 MiB a mapping of its own; ``malloc_trim`` returns the heap's free pages."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to tune
        return None
    if not hasattr(libc, "malloc_trim"):
        return None
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    return libc


_LIBC = _glibc()
