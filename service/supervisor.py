"""Several worker processes (``WEB_CONCURRENCY`` > 1): uvicorn's supervisor, plus metrics.

The parent process binds the socket, spawns the workers (``multiprocessing`` spawn:
each one unpickles the uvicorn config, so the app factory and the protocol factory are
picklable) and watches them: a worker that dies is replaced, a worker that fails to
start stops the whole server (exit code 3), and ``SIGTERM``/``SIGINT`` stop every worker
gracefully (each finishes its requests and runs its lifespan's shutdown) before the
parent exits. The parent serves nothing itself.

Metrics: the parent points ``PROMETHEUS_MULTIPROC_DIR`` at a folder before spawning (a
private temporary folder, removed at exit, unless the variable names one; a previous
run's files are cleared from it), and marks each worker that exits dead there, so its
live gauges stop counting (:mod:`service.telemetry.multiprocess`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, MutableMapping
from pathlib import Path

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess

from service.telemetry.multiprocess import clear_metric_files, mark_worker_dead
from service.telemetry.multiprocess_env import multiprocess_dir

__all__ = ["MetricsFolderError", "Supervisor", "open_metrics_folder", "serve_workers"]

_log = logging.getLogger("service.server")


class MetricsFolderError(RuntimeError):
    """PROMETHEUS_MULTIPROC_DIR names a folder that cannot hold the metric files."""


class Supervisor(Multiprocess):
    """uvicorn's multi-process supervisor that marks exited workers dead for the metrics."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], folder: str) -> None:
        super().__init__(config, sockets)
        self.folder = folder
        self._known: set[int] = set()

    def init_processes(self) -> None:
        super().init_processes()
        self._reap()

    def keep_subprocess_alive(self) -> None:
        super().keep_subprocess_alive()
        self._reap()

    def handle_signals(self) -> None:
        super().handle_signals()  # SIGHUP restarts, SIGTTOU removes workers
        self._reap()

    def join_all(self) -> None:
        super().join_all()
        for pid in self._known:
            mark_worker_dead(pid, self.folder)
        self._known = set()

    @property
    def failed_to_start(self) -> bool:
        """Whether a worker exited before it served (the app or its settings are broken)."""
        return any(process.exitcode == STARTUP_FAILURE for process in self.processes)

    def _reap(self) -> None:
        """Mark the workers that are no longer supervised dead (they were replaced)."""
        current = {process.pid for process in self.processes if process.pid is not None}
        for pid in self._known - current:
            mark_worker_dead(pid, self.folder)
        self._known = current


@contextlib.contextmanager
def open_metrics_folder(environ: MutableMapping[str, str]) -> Iterator[str]:
    """The folder of the workers' metric files, set in `environ` for them to inherit.

    PROMETHEUS_MULTIPROC_DIR's folder when given (created if missing; a previous run's
    ``*.db`` files are removed, the folder stays), else a private temporary folder that
    is removed at exit.
    """
    given = multiprocess_dir(environ)
    if given is None:
        folder = tempfile.mkdtemp(prefix="prompt-rollouts-metrics-")
        environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    path = Path(given)
    try:
        path.mkdir(parents=True, exist_ok=True)
        removed = clear_metric_files(path)
        probe = path / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise MetricsFolderError(
            f"PROMETHEUS_MULTIPROC_DIR={given}: cannot keep the workers' metric files there "
            f"({error.strerror or error})"
        ) from None
    if removed:
        _log.info("removed %d metric files of a previous run from %s", removed, given)
    environ["PROMETHEUS_MULTIPROC_DIR"] = given
    yield given


def serve_workers(config: uvicorn.Config, environ: MutableMapping[str, str]) -> int:
    """Run ``config.workers`` workers until a signal stops them; the exit code (0, or 3
    when a worker failed to start)."""
    with open_metrics_folder(environ) as folder:
        listening = config.bind_socket()
        try:
            supervisor = Supervisor(config, [listening], folder)
            supervisor.run()
        finally:
            listening.close()
    return STARTUP_FAILURE if supervisor.failed_to_start else 0
