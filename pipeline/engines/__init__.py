"""Engines: what runs a stage's per-batch work.

A stage's work on a batch of rows is a pure function over a Polars frame. The stage hands
an engine the table it reads (a lazy Parquet scan), the batch size and a *worker factory*
(called once per worker process to build the per-batch function, so a language model or a
GX context is loaded once, not once a batch); the engine returns the function's results batch by
batch, in the order of the rows, and the stage writes them with its own writers
(``pipeline/plumbing/io.py``). Batches are the same slices of the same rows on every
engine, so the outputs are the same bytes whichever engine ran them. Work that is not a
slice of a table (ingest's runs of a drop's files, dedup's LSH bands, its steps of
candidate pairs, split's batches of n-grams, publish's shards) goes through ``map_tasks``: a function of data shared by all tasks and of
each task's own item.

* ``local`` (the default): this process, one batch after the other. Ray is not imported.
* ``ray``: Ray Data tasks on the cluster at ``RAY_ADDRESS``, or a local one (``engines/ray.py``).

``engines/engine.py`` holds the interface and the choice of engine.

Chosen by params.yaml ``engine.name`` or a stage command's ``--engine``. The choice does
not change any output, so DVC does not track it.
"""
