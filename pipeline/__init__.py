"""The Arabic news corpus pipeline: raw drop -> ingest -> clean -> dedup -> validate -> split -> publish.

Layout, in the order of the data flow; a part imports only from the parts listed before it
(tests/test_layout.py checks it, and that no module imports itself back):

* ``commands.py`` the table of ``corpus`` commands: names, help texts, examples (imports nothing of ours)
* ``plumbing/``   I/O (atomic writers, partitions), params, the article schema, progress, locks
* ``text/``       Arabic text tools: normalisation and match keys, MinHash, language identification
* ``engines/``    what runs a stage's per-batch work: ``local`` (this process, the default) or ``ray``
                  (Ray Data on a cluster); the same batches and outputs on both
* ``stages/``     one module per stage, ingest to split and figures: pure functions over Polars frames
                  plus a thin command that reads params and writes outputs
* ``release/``    the release: manifests and versions, card, Croissant, the Hub client, ``corpus publish``
* ``drops.py``    the drop tools (``validate-drop``, ``add-drop``), built on the stages
* ``cli.py``      ``corpus``: loads a command's module only when that command runs
"""
