"""A Ray cluster on this machine for the tests and benchmarks, that stops only its own processes.

``ray stop`` stops every Ray process of the machine it finds by name (raylet, gcs_server,
workers...), whoever started them: another person's cluster or a benchmark's as well. Here
each node is ``ray start --block`` in a session of its own (``start_new_session``): the
processes Ray launches for it (GCS, raylet, agents, and the workers, which make process
groups of their own) stay in its session, and stopping the cluster kills that session's
processes only. Each cluster gets its own ``--temp-dir`` (sessions, logs, sockets) and its
own free ports, so two clusters, and two runs of the tests, can live side by side.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

STARTED = "Ray runtime started"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalRayCluster:
    """A head and `len(node_cpus) - 1` worker nodes on 127.0.0.1, started on entering and
    stopped on leaving (``with LocalRayCluster(ray, [1, 1]) as cluster:``). ``cluster.env``
    holds RAY_ADDRESS and a fresh auth token (Ray 2.60 authenticates nodes and clients): the
    environment for the commands that use the cluster."""

    def __init__(self, ray: Path | str, node_cpus: list[int], object_store_bytes: int | None = None,
                 start_timeout: float = 300.0) -> None:
        self.ray, self.node_cpus, self.start_timeout = str(ray), node_cpus, start_timeout
        self.object_store_bytes = object_store_bytes
        # Short: Ray's unix sockets live under it (108 bytes at most for a socket path).
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
        self.address = f"127.0.0.1:{free_port()}"
        self.env = {"RAY_ADDRESS": self.address, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        self.nodes: list[subprocess.Popen] = []

    def __enter__(self) -> LocalRayCluster:
        try:
            for number, cpus in enumerate(self.node_cpus):
                self._start_node(number, cpus)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _start_node(self, number: int, cpus: int) -> None:
        role = (["--head", "--port", self.address.split(":")[1], "--include-dashboard", "false"] if number == 0
                else ["--address", self.address])
        options = ["--num-cpus", str(cpus), "--node-ip-address", "127.0.0.1", "--temp-dir", str(self.temp_dir),
                   "--dashboard-agent-listen-port", str(free_port()), "--disable-usage-stats"]
        if self.object_store_bytes:
            options += ["--object-store-memory", str(self.object_store_bytes)]
        log = self.temp_dir / f"node-{number}.log"
        with log.open("wb") as output:  # the blocking process writes on: a file, not a pipe nobody reads
            node = subprocess.Popen([self.ray, "start", "--block", *role, *options], stdout=output,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                    env=os.environ | self.env)
        self.nodes.append(node)
        deadline = time.monotonic() + self.start_timeout
        while STARTED not in log.read_text(errors="replace"):
            if node.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start (node {number}) did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.5)

    def processes(self) -> list[psutil.Process]:
        """The cluster's live processes: those of its nodes' sessions."""
        sessions, found = {node.pid for node in self.nodes}, []
        for process in psutil.process_iter():
            try:
                if os.getsid(process.pid) in sessions and not exited(process):
                    found.append(process)
            except (OSError, psutil.Error):
                continue
        return found

    def stop(self) -> None:
        """SIGKILL to the processes of the nodes' sessions, as ``ray stop --force`` does to
        every Ray process (on SIGTERM, raylet and GCS take more than 10 s here, waiting on
        each other; the cluster's state is thrown away anyway). Nothing outside them is
        signalled; a worker started while they are listed is found the second time."""
        members: list[psutil.Process] = []
        for _ in range(2):
            found = self.processes()
            for process in found:
                try:
                    process.kill()
                except psutil.NoSuchProcess:
                    pass
            members += found
        _wait_exited(members, 10)
        for node in self.nodes:
            node.wait()
        self.nodes = []
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def exited(process: psutil.Process) -> bool:
    """Whether `process` ended (a zombie has: the ``ray start`` that would reap it is gone)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_exited(processes: list[psutil.Process], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(exited(process) for process in processes) and time.monotonic() < deadline:
        time.sleep(0.2)
