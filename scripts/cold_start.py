"""Cold start to ready, A/B: spawn ``python -m service`` from one or more checkouts, in turn.

Measures, per start, the wall time from spawn to the first 200 on ``/readyz`` and the
service process's CPU time (user + system, from ``/proc``) at that moment; prints the
medians per checkout. Starts alternate between the checkouts (round robin), so a busy
spell of the shared machine hits them alike. Two configurations:

- ``bench``: what ``make bench`` starts (a retrieval-free copy of policy-qa,
  ``CORPUS_DIR`` empty, the embedded store in memory, ``LOG_LEVEL=WARNING``);
- ``shipped``: ``make run``'s defaults (the shipped prompts, both corpora in ``data/``
  indexed at start-up into the embedded store, the bundled MiniLM model).

Usage (from the repository root)::

    .venv/bin/python scripts/cold_start.py --mode shipped --runs 7 . ../main
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.servers import build_service_env, fetch_cpu_ns, fetch_free_port, write_prompts  # noqa: E402


def start_once(
    checkout: Path, mode: str, prompts: Path, timeout: float = 120.0
) -> tuple[float, float]:
    """Seconds to ready and CPU seconds at ready, for one start from ``checkout``."""
    port = fetch_free_port()
    if mode == "bench":
        env = build_service_env(prompts, "http://127.0.0.1:9/v1")
    else:
        env = build_service_env(checkout / "prompts", "")
        env["CORPORA"] = "policies=data/policies,faq=data/faq"
        for unset in ("MODEL_BASE_URL", "CORPUS_DIR"):
            env.pop(unset, None)
    env["PYTHONPATH"] = str(checkout)
    argv = [sys.executable, "-m", "service", "--port", str(port), "--log-level", "warning"]
    url = f"http://127.0.0.1:{port}/readyz"
    spawned = time.perf_counter()
    # Our own interpreter and module, with a checkout path given on the command line.
    with subprocess.Popen(argv, env=env, cwd=checkout, stdout=subprocess.DEVNULL) as proc:  # noqa: S603
        try:
            while time.perf_counter() - spawned < timeout:
                if proc.poll() is not None:
                    raise RuntimeError(f"{checkout}: the service exited with {proc.returncode}")
                try:
                    with urllib.request.urlopen(url, timeout=2.0) as response:
                        if response.status == 200:
                            wall = time.perf_counter() - spawned
                            cpu = (fetch_cpu_ns(proc.pid) or 0) / 1e9
                            return wall, cpu
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                time.sleep(0.02)
            raise RuntimeError(f"{checkout}: not ready after {timeout:.0f} s")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    """Parse the arguments, run the starts round robin, print medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkouts", nargs="+", type=Path)
    parser.add_argument("--mode", choices=["bench", "shipped"], default="shipped")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results: dict[Path, list[tuple[float, float]]] = {c.resolve(): [] for c in args.checkouts}
    with tempfile.TemporaryDirectory() as tmp:
        prompts = Path(tmp)
        write_prompts(prompts)
        for run in range(args.runs):
            order = list(results) if run % 2 == 0 else list(reversed(results))
            for checkout in order:
                results[checkout].append(start_once(checkout, args.mode, prompts))
    load = os.getloadavg()[0]
    sys.stdout.write(f"mode {args.mode}, {args.runs} starts each, load average {load:.1f}\n")
    for checkout, runs in results.items():
        walls = [w for w, _ in runs]
        cpus = [c for _, c in runs]
        sys.stdout.write(
            f"{checkout}: ready median {statistics.median(walls):.2f} s "
            f"(min {min(walls):.2f}, max {max(walls):.2f}); "
            f"CPU at ready median {statistics.median(cpus):.2f} s (min {min(cpus):.2f})\n"
        )


if __name__ == "__main__":
    main()
