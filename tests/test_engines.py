"""The engines (pipeline/engines/): the stages' per-batch work on a real Ray cluster (a head
and a worker node started on this machine) gives the local engine's outputs byte for byte,
also when its tasks read and write at s3:// URLs (a local S3-API server, tests/s3_server.py),
and the default path does not import Ray."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import zipfile
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from conftest import CP1256, REPO, SAUDI_ZIPS, SEED, VENV_BIN, copy_project, run_command, run_corpus
from pipeline_runs import folder_files, output_files
from s3_server import BUCKET
from test_ingest import _bad_drop, _ingest_params

from benchmarks import dedup_eval
from benchmarks.incremental import generate
from benchmarks.ray_cluster import LocalRayCluster, exited
from benchmarks.split_incremental import dedup_layout
from pipeline.engines.engine import engine_name
from pipeline.engines.local import LocalEngine
from pipeline.plumbing.fingerprint import DigestMemo
from pipeline.plumbing.io import partition, scan_partitions, scan_table, storage_path, write_table
from pipeline.plumbing.params import ParamsError, load_params, section
from pipeline.plumbing.schema import SPLITS
from pipeline.release import publish
from pipeline.stages import ingest
from pipeline.stages.dedup import DUPLICATES_FILE, KEPT_FILE, scan_corpus

OBJECT_STORE_BYTES = 100 * 2**20  # per node; the test's batches are a few MB


@pytest.fixture(scope="module")
def ray_cluster(s3_server):
    """A real two-node Ray cluster on 127.0.0.1 (one CPU each), RAY_ADDRESS and its auth
    token in the environment the stage commands inherit; stopped afterwards whatever
    happens, and only it (benchmarks/ray_cluster.py: not ``ray stop``, which stops every
    Ray cluster of the machine). Its nodes have the AWS variables of the local S3 server
    (tests/s3_server.py), as a real cluster's nodes have their credentials."""
    before = dict(os.environ)
    with LocalRayCluster(VENV_BIN / "ray", [1, 1], OBJECT_STORE_BYTES) as cluster:
        os.environ.update(cluster.env)
        try:
            yield cluster
        finally:
            os.environ.clear()
            os.environ.update(before)


# A detached actor outlives its job: a worker process, which makes a process group of its own.
_DETACHED_ACTOR = """
import ray
ray.init()
@ray.remote
class Kept:
    def ping(self):
        return 1
assert ray.get(Kept.options(name="kept", lifetime="detached").remote().ping.remote()) == 1
"""


def test_stopping_a_cluster_leaves_another_one_running(ray_cluster):
    """A second cluster started beside the test's, with a worker, and stopped: its processes
    (the worker too) are gone, the test's cluster still runs tasks (``ray stop --force``
    here killed other people's clusters)."""
    with LocalRayCluster(VENV_BIN / "ray", [1], OBJECT_STORE_BYTES) as other:
        subprocess.run([sys.executable, "-c", _DETACHED_ACTOR], env=os.environ | other.env, check=True,
                       capture_output=True)
        others = other.processes()
        assert [process for process in others if os.getpgid(process.pid) != os.getsid(process.pid)]  # the worker
        assert not {process.pid for process in others} & {process.pid for process in ray_cluster.processes()}
    assert all(exited(process) for process in others)
    assert ray_cluster.processes() and run_command(
        sys.executable, "-c", "import ray; ray.init(); print(ray.get(ray.remote(lambda: 6 * 7).remote()))",
        cwd=REPO).split()[-1] == "42"


def _set_engine(root: Path, name: str) -> None:
    params = root / "params.yaml"
    text = params.read_text(encoding="utf-8")
    params.write_text(text.replace("  name: local ", f"  name: {name} ", 1), encoding="utf-8")
    assert engine_name(yaml.safe_load(params.read_text(encoding="utf-8"))) == name


def test_dvc_repro_on_a_ray_cluster_gives_the_local_outputs(tmp_path, ray_cluster):
    """A quarter of a day of SaudiNewsNet (every 4th of its 2,972 records: 743, of every
    outlet, with reprints and empty records) as the one drop, with the seed
    articles, a folder of windows-1256 articles and files ingest quarantines, up to
    validation, in small batches (several, so their order counts; ingest reads the files
    in tasks of about 20 kB): the local engine, then a Ray cluster of two nodes. Every
    output file and dvc.lock are the same."""
    root = copy_project(tmp_path / "project")
    drop = root / "data" / "raw" / "snn"
    drop.mkdir()
    with zipfile.ZipFile(SAUDI_ZIPS / "2015-07-21.zip") as day:
        records = json.loads(day.read("2015-07-21.json"))
    (drop / "2015-07-21.json").write_text(json.dumps(records[::4], ensure_ascii=False), encoding="utf-8")
    for article in sorted(SEED.glob("*.txt")):
        shutil.copy(article, drop)
    (drop / "cp1256").mkdir()
    for article in sorted(CP1256.rglob("*.txt"))[::100]:
        shutil.copy(article, drop / "cp1256")
    (drop / "a-export.jsonl").write_text('{"text": "نص"}\n{"text": \n[1]\n{"text": 5}\n', encoding="utf-8")
    (drop / "b-empty.txt").write_bytes(b"")
    (drop / "notes.pdf").write_bytes(b"%PDF-1.4")
    params = root / "params.yaml"
    text = params.read_text(encoding="utf-8").replace("drop_order: [seed]", "drop_order: [snn]", 1)
    text = re.sub(r"\n  task_bytes: \d+ ", "\n  task_bytes: 20000 ", text, count=1)  # ingest's
    text = re.sub(r"\n  batch_size: \d+ ", "\n  batch_size: 250 ", text, count=1)  # ingest's
    text = re.sub(r"\nclean:\n  batch_size: \d+ ", "\nclean:\n  batch_size: 250 ", text, count=1)
    text = re.sub(r"\n  batch_rows: \d+ ", "\n  batch_rows: 300 ", text, count=1)  # validate's
    text = re.sub(r"\n  verify_batch_pairs: \d+ ", "\n  verify_batch_pairs: 10 ", text, count=1)  # dedup's
    params.write_text(text, encoding="utf-8")
    run_command("dvc", "repro", "validate", cwd=root)
    lock, outputs = (root / "dvc.lock").read_text(), output_files(root)
    ingested = json.loads((root / "build" / "ingest" / "drop=snn" / "report.json").read_text())
    assert ingested["quarantined_by_reason"] == {"empty": 25, "unreadable_record": 2, "unsupported_format": 1,
                                                 "wrong_type": 1}  # empty: 24 records of the day, one file
    assert ingested["drops"]["snn"]["encodings"] == {"utf-8": 7, "windows-1256": 30}
    assert ingested["articles"] > 2 * 250  # several Parquet parts
    rows = json.loads((root / "build" / "validate" / "rows" / "drop=snn" / "results.json").read_text())
    assert rows["batches"] > 1 and rows["articles"] > 300
    dedup = json.loads((root / "build" / "dedup" / "drop=snn" / "report.json").read_text())
    assert dedup["candidate_pairs"] > 3 * 10 and dedup["duplicates_by_kind"]["near"] > 0  # several tasks of pairs
    pages = _data_docs_runs(root)

    _set_engine(root, "ray")
    shutil.rmtree(root / "build")
    repro = subprocess.run(["dvc", "repro", "--force", "validate"], cwd=root, capture_output=True, text=True)
    assert repro.returncode == 0, repro.stdout + repro.stderr
    assert "Running stage 'clean'" in repro.stdout
    assert "files read on the ray engine" in repro.stderr
    assert "bands grouped and pairs verified on the ray engine" in repro.stderr
    assert "no set or signature was sent to this process" in repro.stderr  # the signing tasks wrote them
    assert (root / "dvc.lock").read_text() == lock
    assert output_files(root).keys() == outputs.keys()
    different = [name for name, data in output_files(root).items() if data != outputs[name]]
    assert not different
    # GX ran on the workers; the driver built the same Data Docs pages (their run times aside).
    assert _data_docs_runs(root) == pages


def _data_docs_runs(root: Path) -> list[tuple[str, ...]]:
    """The validation pages of the drop's Data Docs: suite and run name (rows a-b), without the
    run time and GX's batch id below them."""
    site = root / "build" / "validate" / "drop=snn" / "data_docs" / "validations"
    runs = sorted(page.relative_to(site).parts[:-2] for page in site.rglob("*.html"))
    assert len(runs) >= 4, runs  # two suites, several batches
    return runs


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory) -> dedup_eval.Evaluation:
    """The labelled dedup evaluation (benchmarks/dedup_eval.py: the seeds, the SaudiNewsNet
    sample with its reprints, templated reports, and their variants), built once for the
    tests that only read it."""
    return dedup_eval.build_sample_evaluation(tmp_path_factory.mktemp("evaluation"), load_params(REPO / "params.yaml"))


# The sample's days of the templated drop's market and execution reports: the sample holds
# reprints of two of them, which the templated drop's articles duplicate across drops.
REPORT_DAYS = ["2015-08-06", "2015-08-10"]


def test_dedup_against_earlier_drops_on_a_ray_cluster_gives_the_local_outputs(tmp_path, s3_server, ray_cluster,
                                                                              evaluation):
    """The drops of the labelled dedup evaluation (real articles: the seeds, the SaudiNewsNet
    sample's articles of two days with their variants, templated reports), each
    deduplicated against the index of those before it, with `corpus dedup --engine local`,
    then `--engine ray`: the LSH bands
    (of a drop, and of a drop against the index) and the verification of the candidate
    pairs on the two nodes' workers give the local engine's files, byte for byte. The
    signing tasks hand the band tasks their keys through partitions in `engine.scratch`
    (here at s3://: a band task that found fewer keys than articles would fail), deleted
    after each drop, and the verifying tasks their sets (``minhash.SetParts``, with the
    earlier drops' articles' sets as one more part: a task that read other sets would give
    other pairs)."""
    clean = tmp_path / "clean"
    report_days = (pl.col("drop") != "sample") | pl.col("source_file").str.slice(4, 10).is_in(REPORT_DAYS)
    for (drop,), articles in evaluation.articles.filter(report_days).group_by("drop"):
        write_table(articles, partition(clean, drop) / KEPT_FILE)
    params_file = tmp_path / "params.yaml"
    text = re.sub(r"\n  verify_batch_pairs: \d+ ", "\n  verify_batch_pairs: 40 ",
                  (REPO / "params.yaml").read_text(encoding="utf-8"), count=1)
    text = text.replace("\n  scratch: build/scratch ", f"\n  scratch: s3://{BUCKET}/scratch ", 1)
    # (the sample's 230 articles in two batches: a band task reads the keys of both)
    params_file.write_text(re.sub(r"\n  batch_size: 10000 ", "\n  batch_size: 150 ", text, count=1),  # dedup's
                           encoding="utf-8")
    logs = {engine: run_corpus("--params", str(params_file), "dedup", "--input", str(clean), "--output",
                               str(tmp_path / engine), "--metrics", str(tmp_path / f"{engine}.json"), "--engine",
                               engine).stderr
            for engine in ("local", "ray")}
    drops = evaluation.articles["drop"].n_unique()
    assert drops >= 3 and logs["ray"].count("bands grouped and pairs verified on the ray engine") == drops
    for engine in ("local", "ray"):
        assert logs[engine].count(f"(band keys in s3://{BUCKET}/scratch/corpus-shared-") == drops
    # the signing tasks wrote the sets and signatures at s3://, the verifying tasks read them there
    assert logs["ray"].count("the signing tasks wrote the sets and signatures of ") == drops
    assert logs["ray"].count(f"to s3://{BUCKET}/scratch/corpus-shared-") == drops
    assert "no set or signature was sent" not in logs["local"]
    assert not s3_server.files(f"s3://{BUCKET}/scratch")
    assert folder_files(tmp_path / "ray") == folder_files(tmp_path / "local")
    report = json.loads((tmp_path / "local" / "report.json").read_text())
    assert report["candidate_pairs"] > 5 * 40
    # later drops lost articles to earlier drops' kept ones: their candidates came from the index
    kept = scan_partitions(tmp_path / "local", sorted(report["drops"]), KEPT_FILE).select("id", "drop").collect()
    removed = scan_corpus(tmp_path / "local", DUPLICATES_FILE).collect().join(
        kept.rename({"id": "duplicate_of", "drop": "kept_drop"}), on="duplicate_of")
    assert removed.filter((pl.col("drop") != pl.col("kept_drop")) & (pl.col("kind") == "near")).height


def test_split_ngram_hashing_on_a_ray_cluster_gives_the_local_outputs(tmp_path, ray_cluster):
    """`corpus split` of two drops of articles recombined from SaudiNewsNet sentences (with
    reprints, so held-out articles share n-grams with train), the second against the index
    of the first, with `--engine local`, then `--engine ray`: the contamination index's
    n-grams are hashed in batches of 20k words on the two nodes' workers, and the split
    folders and the index are the local engine's, byte for byte."""
    generate(1500, 7, tmp_path / "raw")
    dedup_layout(tmp_path / "raw", tmp_path / "dedup")
    params_file = tmp_path / "params.yaml"
    params_file.write_text(re.sub(r"\n    memory_ngrams: \d+ ", "\n    memory_ngrams: 20000 ",
                                  (REPO / "params.yaml").read_text(encoding="utf-8"), count=1), encoding="utf-8")
    logs = {engine: run_corpus("--params", str(params_file), "split", "--input", str(tmp_path / "dedup"), "--output",
                               str(tmp_path / engine / "split"), "--index", str(tmp_path / engine / "index"),
                               "--metrics", str(tmp_path / engine / "split.json"), "--engine", engine).stderr
            for engine in ("local", "ray")}
    assert "n-grams hashed on the ray engine" in logs["ray"] and "n-grams hashed on the local engine" in logs["local"]
    # (not the digest memo the stage keeps beside its outputs: inodes and times of this checkout's files)
    outputs = {engine: {name: data for name, data in folder_files(tmp_path / engine).items() if name != DigestMemo.FILE}
               for engine in ("local", "ray")}
    assert outputs["ray"] == outputs["local"] and "split/report.json" in outputs["ray"]
    report = json.loads((tmp_path / "local" / "split" / "report.json").read_text())
    assert report["drops"] == ["base", "new"] and report["contamination"]["test"]["articles_sharing_any_ngram"] > 0
    assert report["contamination"]["test"]["distinct_ngrams"] > 20_000  # many batches


def test_publish_shards_on_a_ray_cluster_are_the_local_ones(tmp_path, reproduced_seed, ray_cluster):
    """The seed run's release folder (5 articles) built with shards of one article (each a
    task): on the Ray cluster, the same shards, manifests and build state as on the local
    engine, byte for byte."""
    params = tmp_path / "params.yaml"
    text = (REPO / "params.yaml").read_text(encoding="utf-8")
    params.write_text(re.sub(r"\n  shard_rows: \d+ ", "\n  shard_rows: 1 ", text, count=1), encoding="utf-8")
    build = reproduced_seed / "build"
    folders = {}
    for engine in ("local", "ray"):
        folders[engine] = tmp_path / engine
        result = run_corpus("--params", str(params), "publish", "--build-only", "--engine", engine,
                            "--input", str(build / "split"), "--stage-outputs", str(build),
                            "--validation", str(build / "validate" / "results.json"), "--output", str(folders[engine]),
                            "--metrics", str(tmp_path / f"{engine}.json"),
                            "--card-template", str(REPO / "dataset_card.md"), cwd=tmp_path)
        assert f"written on the {engine} engine" in result.stderr
    shards = sorted((folders["local"] / "data").glob("*.parquet"))
    assert len(shards) == 5 and len([shard for shard in shards if shard.name.startswith("train-")]) > 1
    assert folder_files(folders["ray"]) == folder_files(folders["local"])


def test_reading_and_writing_at_s3_urls_on_a_ray_cluster_gives_the_local_files(tmp_path, s3_server, ray_cluster,
                                                                                 reproduced_seed):
    """The engines' tasks on a local S3-API server (moto's), on the two nodes' workers and
    on the local engine: ingest's tasks read a drop at s3:// (every kind of input, the seed
    articles and windows-1256 ones, tasks of about 20 kB), and its outputs are those of the
    drop read from disk; map_batches' tasks read their slices of a Parquet table at s3://;
    publish's shard tasks (shards of one article) write the shards to s3://, the bytes of
    the shards the local engine writes to disk."""
    from pipeline.engines.ray import RayEngine

    drop = tmp_path / "raw" / "mixed"
    _bad_drop(drop)
    shutil.copytree(SEED, drop / "seed")
    for article in sorted(CP1256.rglob("*.txt"))[::200]:
        (drop / "cp1256").mkdir(exist_ok=True)
        shutil.copy(article, drop / "cp1256")
    s3_server.upload(tmp_path / "raw", f"s3://{BUCKET}/raw")
    params = _ingest_params() | {"task_bytes": 20_000}
    ray_engine = RayEngine()
    try:
        on_disk = ingest.run(tmp_path / "raw", tmp_path / "disk", None, params, ["mixed"])
        at_url = ingest.run(storage_path(f"s3://{BUCKET}/raw"), tmp_path / "s3", None, params, ["mixed"], ray_engine)
        assert folder_files(tmp_path / "s3") == folder_files(tmp_path / "disk")
        assert at_url.report["drops"]["mixed"]["encodings"]["windows-1256"] > 5 and on_disk.articles > 15

        s3_server.upload(tmp_path / "disk" / "articles", f"s3://{BUCKET}/articles")
        table = scan_table(f"s3://{BUCKET}/articles")
        expected = scan_table(tmp_path / "disk" / "articles").collect()
        for engine in (LocalEngine(), ray_engine):
            batches = list(engine.map_batches(table, lambda: lambda batch, first_row: batch, 7))
            assert len(batches) > 2 and pl.concat(batches).equals(expected)

        publish_params = section(load_params(REPO / "params.yaml"), "publish")
        settings = publish.Settings.from_params(publish_params | {"shard_rows": 1})
        split_dir, shaping = reproduced_seed / "build" / "split", publish.shard_shaping(settings)
        tasks = [(dataclasses.replace(drop, path=drop.path.resolve()), index)
                 for split in SPLITS for drop in publish.split_drops(split_dir, split, shaping)
                 for index in range(publish.shard_count(drop, settings))]
        written = {}
        for name, engine, folder in [("disk", LocalEngine(), tmp_path / "shards"),
                                     ("local engine", LocalEngine(), storage_path(f"s3://{BUCKET}/shards-local")),
                                     ("ray engine", ray_engine, storage_path(f"s3://{BUCKET}/shards-ray"))]:
            written[name] = [(shard, manifest.to_dicts())
                             for shard, manifest in engine.map_tasks(publish.write_shard, (folder, settings), tasks)]
        assert len(tasks) == 5 and written["ray engine"] == written["local engine"] == written["disk"]
        assert s3_server.files(f"s3://{BUCKET}/shards-ray") == folder_files(tmp_path / "shards")
        assert s3_server.files(f"s3://{BUCKET}/shards-local") == folder_files(tmp_path / "shards")
    finally:
        import ray

        ray.shutdown()


def test_add_drops_presigned_articles_verified_on_a_ray_cluster_give_the_local_decisions(tmp_path, ray_cluster,
                                                                                          evaluation):
    """add-drop deduplicates what the corpus lacks of a drop with the articles it signed
    already (``dedup.SignedArticles``). On a cluster their sets reach the verifying tasks as
    one part this process writes, no signing task having written one (its folder did not
    exist: FileNotFoundError before the fix): the local engine's assignment, review and pairs."""
    from pipeline.stages import dedup

    params = load_params(REPO / "params.yaml")
    articles = evaluation.articles.lazy()
    local = dataclasses.replace(dedup.DedupParams.from_params(params), batch_size=300, verify_batch_pairs=150,
                                scratch=str(tmp_path / "scratch"))
    try:
        with dedup.SignedArticles.of(articles, local) as signed:
            on_ray = dedup.deduplicate(articles, dataclasses.replace(local, engine="ray"), presigned=signed)
    finally:  # this process leaves the cluster (else it exits with it when the fixture stops it)
        import ray

        ray.shutdown()
    plain = dedup.deduplicate(articles, local)
    assert on_ray.assignment.equals(plain.assignment) and on_ray.review.equals(plain.review)
    assert on_ray.pair_ids().equals(plain.pair_ids()) and plain.assignment["kind"].is_not_null().sum() > 100


def test_the_default_engine_does_not_import_ray():
    code = (
        "import sys; from pipeline import cli; from pipeline.stages import ingest, clean, validate, dedup; "
        "from pipeline.engines.engine import open_engine; from pipeline.plumbing.params import load_params; "
        "assert open_engine(load_params()).name == 'local'; "
        "print(sorted(name for name in sys.modules if name == 'ray' or name.startswith('ray.')))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("engine", [{"name": "spark"}, "ray"])
def test_an_unknown_engine_is_refused(engine):
    with pytest.raises(ParamsError, match="engine"):
        engine_name({"engine": engine})


@pytest.mark.parametrize("scratch", ["nosuch://bucket/scratch", "/proc/no/such/folder"])
def test_a_scratch_place_the_tasks_cannot_use_is_one_line_and_an_exit_code(reproduced_seed, tmp_path, scratch):
    """params.yaml ``engine.scratch`` (where dedup's signing tasks leave the band keys) at a URL
    of an unknown scheme, or a folder that cannot be made: dedup says so in one line naming
    the setting, before any task runs, and exits 2 (no traceback)."""
    params = (reproduced_seed / "params.yaml").read_text(encoding="utf-8")
    assert "\n  scratch: build/scratch " in params
    (tmp_path / "params.yaml").write_text(params.replace("\n  scratch: build/scratch ", f"\n  scratch: {scratch} ", 1),
                                          encoding="utf-8")
    result = run_corpus("dedup", "--input", str(reproduced_seed / "build" / "clean"), "--output", "dedup",
                        "--metrics", "dedup.json", cwd=tmp_path, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"corpus: error: params.yaml 'engine.scratch' ({scratch}) cannot hold the tasks' files: ")
    assert not (tmp_path / "dedup.json").exists()


def test_the_cluster_configs_are_valid_and_share_the_project_path():
    """deploy/: the `ray up` config passes Ray's own cluster schema (with Ray's defaults
    filled in, as `ray up` does), and the KubeRay job mounts its ReadWriteMany claim at the
    path the ray up nodes mount the project at, in the head and every worker pod."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    ray_up = yaml.safe_load((REPO / "deploy" / "ray-cluster.yaml").read_text(encoding="utf-8"))
    validate_config(prepare_config(ray_up))
    project = "/srv/corpus"
    assert any(f" {project}" in command for command in ray_up["initialization_commands"])
    claim, job = yaml.safe_load_all((REPO / "deploy" / "kuberay-rayjob.yaml").read_text(encoding="utf-8"))
    assert claim["kind"] == "PersistentVolumeClaim" and claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert job["kind"] == "RayJob" and f"cd {project} && dvc repro" in job["spec"]["entrypoint"]
    cluster = job["spec"]["rayClusterSpec"]
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        pod = group["template"]["spec"]
        volumes = {volume["name"]: volume["persistentVolumeClaim"]["claimName"] for volume in pod["volumes"]}
        mounts = {mount["mountPath"]: volumes[mount["name"]] for mount in pod["containers"][0]["volumeMounts"]}
        assert mounts == {project: claim["metadata"]["name"]}
    assert f"COPY . {project}" in (REPO / "deploy" / "Dockerfile").read_text(encoding="utf-8")


def test_the_signing_tasks_write_the_sets_the_driver_copies_and_the_verifying_tasks_read(tmp_path, evaluation):
    """How a cluster's dedup moves the sets (``minhash.SetParts``), here on the local engine:
    the task that signs a batch writes its shingle sets, detail sets and signatures to
    parts and returns their sizes only (its pickled result, what Ray sends the driver, a
    small share of one with the sets); the driver's files copied from the parts hold the
    bytes of the sets it computes itself on the local engine; a verifying task, given only
    where its documents' sets are, reads them from the parts and finds the overlaps of
    the candidate pairs verified in place. A part that is gone is an error."""
    from pipeline.engines.local import LocalEngine
    from pipeline.stages import dedup
    from pipeline.text import minhash

    params = dataclasses.replace(dedup.DedupParams.from_params(load_params(REPO / "params.yaml")), batch_size=300,
                                 verify_batch_pairs=150)
    articles = evaluation.articles
    parts = minhash.SetParts(tmp_path / "parts")
    signed, sets, details, signatures = {}, {}, {}, {}
    with ExitStack() as files:
        for way, set_parts in (("in memory", None), ("parts", parts)):
            sets[way] = files.enter_context(minhash.ShingleSets(tmp_path / f"{way}.sets"))
            details[way] = files.enter_context(minhash.ShingleSets(tmp_path / f"{way}.details"))
            signatures[way] = minhash.SignatureFile(params.minhash.width)
            figures: list[pl.DataFrame] = []
            signed[way] = dedup.signature_table(articles.lazy().select("id", "text"), params, "articles", sets[way],
                                                figures, details[way], signatures[way], set_parts=set_parts)
            signed[way] = (signed[way], pl.concat(figures))
        n = signed["parts"][0].height
        parts = dataclasses.replace(parts, rows=tuple(range(0, n, params.batch_size)))
        assert len(parts.rows) > 2
        assert all(mine.equals(theirs) for mine, theirs in zip(signed["parts"], signed["in memory"]))
        for kind in (parts.SHINGLE_SETS, parts.DETAIL_SETS, parts.SIGNATURES):
            assert sorted(path.name for path in (tmp_path / "parts" / kind).iterdir()) == [
                f"rows-{row:012d}.u32" for row in parts.rows]
        assert np.array_equal(sets["parts"].keep(n), sets["in memory"].keep(n))  # (written out: the sizes)
        assert np.array_equal(details["parts"].keep(3 * n), details["in memory"].keep(3 * n))
        assert (tmp_path / "parts.sets").read_bytes() == (tmp_path / "in memory.sets").read_bytes()
        assert (tmp_path / "parts.details").read_bytes() == (tmp_path / "in memory.details").read_bytes()
        signature = signatures["parts"].read(np.arange(n))
        assert np.array_equal(signature, signatures["in memory"].read(np.arange(n)))

        batch = dedup.signing_input(articles.lazy()).head(params.batch_size).collect()
        sent = {way: len(pickle.dumps(dedup.sign_batch(batch, 0, params, True, True, set_parts=set_parts)))
                for way, set_parts in (("in memory", None), ("parts", minhash.SetParts(tmp_path / "one")))}
        assert sent["parts"] < 0.1 * sent["in memory"]

        pairs = minhash.candidate_pairs(signature, params.minhash, params.max_bucket_size, LocalEngine().map_tasks)
        a, b = pairs["a"].to_numpy(), pairs["b"].to_numpy()
        verified = {way: list(dedup.verify_on_engine(LocalEngine(), sets[way], details[way], a, b, params, way_parts))
                    for way, way_parts in (("in memory", None), ("parts", parts))}
        assert len(verified["parts"]) > 3 and len(a) == sum(len(o.jaccard) for _, o in verified["parts"])
        for (step, mine), (their_step, theirs) in zip(verified["parts"], verified["in memory"], strict=True):
            assert step == their_step and dataclasses.asdict(mine).keys() == dataclasses.asdict(theirs).keys()
            assert all(np.array_equal(getattr(mine, name), getattr(theirs, name)) for name in dataclasses.asdict(mine))
        assert any(overlap.lead.any() for _, overlap in verified["parts"])  # the detail sets were read too
        parts.path(parts.SHINGLE_SETS, parts.rows[1]).unlink()
        with pytest.raises(FileNotFoundError):
            list(dedup.verify_on_engine(LocalEngine(), sets["parts"], details["parts"], a, b, params, parts))
