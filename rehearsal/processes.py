"""Child processes of a rehearsal (and of the end-to-end tests): the controller and servers.

`ControllerProcess` runs ``kopf run -A --standalone -m controller.operator``;
`ServerProcess` runs a server command and waits until a URL answers. Both log to a file,
stop with SIGTERM then SIGKILL, and with ``new_session=True`` run in a session of their
own, so a Ctrl-C in the terminal reaches the rehearsal alone, which then stops them in
order (nothing is left behind).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

__all__ = ["ControllerProcess", "ServerProcess", "stop_process"]


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; waits, so no zombie is left."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def _tail(path: Path | None, lines: int) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace")
    return "\n".join(line[:400] for line in text.splitlines()[-lines:])


class ControllerProcess:
    """``kopf run -A --standalone -m controller.operator`` as a child process.

    `env` is the base environment; `start(**overrides)` adds to it for one run (e.g. another
    ``PROMETHEUS_URL``). Output goes to one log file per run in `log_dir`.
    """

    def __init__(
        self, env: Mapping[str, str], log_dir: Path, cwd: Path, *, new_session: bool = False
    ) -> None:
        self.env = dict(env)
        self.log_dir = log_dir
        self.cwd = cwd
        self.new_session = new_session
        self.runs = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, **overrides: str) -> None:
        """Start a controller (none may be running: two standalone ones would fight)."""
        assert not self.alive, "a controller is already running"
        self.runs += 1
        self.log_path = self.log_dir / f"controller-{self.runs}.log"
        kopf = Path(sys.executable).parent / "kopf"
        command = [str(kopf), "run", "-A", "--standalone", "-m", "controller.operator"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own command, no shell
                command,
                cwd=self.cwd,
                env={**self.env, **overrides},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.new_session,
            )

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, as when a node dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`."""
        stop_process(self.process, timeout)

    def restart(self, **overrides: str) -> None:
        self.stop()
        self.start(**overrides)

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ServerProcess:
    """A server command run until exit; `start` returns once `ready_url` answers 2xx."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        ready_url: str,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.ready_url = ready_url
        self.env = dict(env)
        self.log_path = log_path
        self.cwd = cwd
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it in a session of its own and wait until it is ready (RuntimeError if not)."""
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own command, no shell
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode} while starting:\n"
                    f"{self.log_tail()}"
                )
            try:
                if httpx.get(self.ready_url, timeout=1.0).is_success:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} was not ready after {self.startup_timeout:g} s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        stop_process(self.process, timeout)

    def log_tail(self, lines: int = 8) -> str:
        return _tail(self.log_path, lines)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
