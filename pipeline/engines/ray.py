"""The Ray engine: a stage's batches as Ray Data tasks on a cluster.

The cluster is the one at ``RAY_ADDRESS`` (``ray start --head`` on one machine, ``ray up``
or KubeRay for many: README "Engines"), else a local one this process starts. Ray
schedules, retries and moves the data; nothing here does.

The dataset is the list of batches (the numbers of their first rows). Each task gets the
stage's table as a Polars plan (a Parquet scan: pickled, it is the paths and the query) and
collects its slice, ``rows [first_row, first_row + batch_size)``: exactly the slices the
local engine takes (``io.batches``), so a stage's per-batch results, and the number of
batches a report states, are the same on both engines (``read_parquet`` would cut batches
at row groups and Ray's block sizes instead). Polars reads ``s3://``, ``gs://`` and
``az://`` URIs as well as local paths; the files must be where every node can read them
(a relative path is read from the driver's working directory, mounted at the same place).
The slices run as Ray Data tasks (``TaskPoolStrategy``, at most one a CPU of the cluster) in
Ray's pooled worker processes, which live as long as the driver: a stage that maps drop
after drop imports its modules once a worker, not once a drop as actors of an
``ActorPoolStrategy`` did (a new pool a map: 10-14 s a drop on this 2-core machine). A
worker builds the stage's per-batch function once a map and keeps it for that map's
next slices. Results come back in the order of the batches (``preserve_order``); the stage
writes them on the driver with its own writers.

Work that is not a slice of a table (ingest's runs of files, dedup's LSH bands and its
steps of candidate pairs, split's batches of n-grams, publish's shards) runs as Ray tasks (``map_tasks``): the data all tasks read is
put in the object store once (numpy arrays are read from it without a copy), each task
gets its own item, and at most two tasks a CPU wait or run at a time, so the driver builds
items only as fast as the cluster takes them (Ray's pattern for limiting pending tasks).
Paths in the items must be absolute, or URLs (``io.Location``: a worker resolves one with
its own credentials).
"""

from __future__ import annotations

import logging
import os
import pickle
import uuid
from collections import deque
from typing import Any, Callable, Iterable, Iterator

import polars as pl
import pyarrow as pa
import ray
import ray.data


def connect() -> None:
    """Join the cluster at RAY_ADDRESS, or start a local one, once per process; set Ray
    Data to keep row order and not to print progress."""
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)


# In a worker process: the per-batch function of the map it last ran a slice of, by the
# map's id. It is replaced by the next map's, so a worker holds one stage's function at most.
_built: tuple[str, Callable[[pl.DataFrame, int], Any]] | None = None


def _run_slices(
    first_rows: pa.Table, table: pl.LazyFrame, make_worker: Callable[[], Callable[[pl.DataFrame, int], Any]],
    batch_size: int, driver_cwd: str, map_id: str,
) -> pa.Table:
    """A Ray Data task: the stage's per-batch function on the slices whose first rows it is
    given; a result goes back pickled, one row a batch."""
    global _built
    if _built is None or _built[0] != map_id:
        _built = None  # the last map's function goes before this one's is built
        # Relative paths (params.yaml's) mean the same files as on the driver where its
        # folder is mounted at the same place (one machine, a shared file system).
        if os.path.isdir(driver_cwd):
            os.chdir(driver_cwd)
        _built = (map_id, make_worker())
    work, results = _built[1], []
    for first_row in first_rows.column("first_row").to_pylist():
        batch = table.slice(first_row, batch_size).collect(engine="streaming")
        results.append(pickle.dumps(work(batch, first_row), protocol=pickle.HIGHEST_PROTOCOL))
    return pa.table({"result": pa.array(results, pa.large_binary())})


@ray.remote
def _task(work: Callable[[Any, Any], Any], shared: Any, item: Any) -> Any:
    return work(shared, item)


class RayEngine:
    name = "ray"

    def __init__(self) -> None:
        connect()

    def map_batches(
        self, table: pl.LazyFrame, make_worker: Callable[[], Callable[[pl.DataFrame, int], Any]], batch_size: int
    ) -> Iterator[Any]:
        rows = table.select(pl.len()).collect().item()
        first_rows = list(range(0, rows, batch_size)) or [0]  # no rows: one empty batch
        workers = max(1, min(len(first_rows), int(ray.cluster_resources().get("CPU", 1))))
        results = ray.data.from_items([{"first_row": row} for row in first_rows], override_num_blocks=len(first_rows))
        results = results.map_batches(
            _run_slices, fn_args=(table, make_worker, batch_size, os.getcwd(), uuid.uuid4().hex), batch_size=1,
            batch_format="pyarrow", compute=ray.data.TaskPoolStrategy(size=workers),
        )
        for block in results.iter_batches(batch_size=None, batch_format="pyarrow"):
            for result in block.column("result").to_pylist():
                yield pickle.loads(result)

    def map_tasks(self, work: Callable[[Any, Any], Any], shared: Any, items: Iterable[Any]) -> Iterator[Any]:
        shared_ref = ray.put(shared)
        limit = 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))
        pending: deque[ray.ObjectRef] = deque()
        for item in items:
            if len(pending) >= limit:
                yield ray.get(pending.popleft())
            pending.append(_task.remote(work, shared_ref, item))
        while pending:
            yield ray.get(pending.popleft())
