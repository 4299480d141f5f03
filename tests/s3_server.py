"""A real S3-API server for the tests of ``s3://`` reading and writing: moto's server
(``moto_server``, from the test dependencies) on 127.0.0.1 at a free port, in a process
of its own, stopped (only it) afterwards. Its state lives in memory, so every start is empty."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pyarrow.fs as pafs

from benchmarks.ray_cluster import free_port

BUCKET = "corpus"


class S3Server:
    """``with S3Server(moto_server) as s3:``: ``s3.env`` holds the AWS variables (endpoint,
    region, dummy keys) that pyarrow, Polars and the pipeline's commands read, and the
    bucket `BUCKET` exists."""

    def __init__(self, moto_server: Path, start_timeout: float = 60.0) -> None:
        self.moto_server, self.start_timeout = moto_server, start_timeout
        self.endpoint = f"http://127.0.0.1:{free_port()}"
        self.env = {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> S3Server:
        port = self.endpoint.rsplit(":", 1)[1]
        self.process = subprocess.Popen([str(self.moto_server), "-H", "127.0.0.1", "-p", port],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        try:
            self._wait_ready()
            self.filesystem(allow_bucket_creation=True).create_dir(BUCKET)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                urllib.request.urlopen(self.endpoint, timeout=2).close()
                return
            except (urllib.error.URLError, ConnectionError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start at {self.endpoint}") from None
                time.sleep(0.2)

    def filesystem(self, **options) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(access_key="test", secret_key="test", region="us-east-1",
                                 endpoint_override=self.endpoint, **options)

    def upload(self, folder: Path, url: str) -> None:
        """Every file under the local `folder` to the prefix `url` (``s3://BUCKET/...``)."""
        pafs.copy_files(str(folder), url.removeprefix("s3://"), source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=self.filesystem())

    def files(self, url: str) -> dict[str, bytes]:
        """Every object under the prefix `url`: key relative to it -> bytes."""
        s3, prefix = self.filesystem(), url.removeprefix("s3://").rstrip("/")
        found = {}
        for info in s3.get_file_info(pafs.FileSelector(prefix, recursive=True)):
            if info.type == pafs.FileType.File:
                with s3.open_input_stream(info.path) as stream:
                    found[info.path[len(prefix) + 1:]] = stream.readall()
        return found

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@contextmanager
def environment_with(env: dict[str, str]) -> Iterator[None]:
    """`env` set in os.environ (what subprocesses and Ray nodes started meanwhile inherit),
    the previous environment restored afterwards."""
    before = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)
