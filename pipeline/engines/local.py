"""The local engine: a stage's batches one after the other in this process (the default)."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import polars as pl

from pipeline.plumbing.io import batches


class LocalEngine:
    name = "local"

    def map_batches(
        self, table: pl.LazyFrame, make_worker: Callable[[], Callable[[pl.DataFrame, int], Any]], batch_size: int
    ) -> Iterator[Any]:
        work, first_row = make_worker(), 0
        for batch in batches(table, batch_size, at_least_one=True):
            yield work(batch, first_row)
            first_row += batch.height

    def map_tasks(self, work: Callable[[Any, Any], Any], shared: Any, items: Iterable[Any]) -> Iterator[Any]:
        return (work(shared, item) for item in items)
