"""What the service adds to a model call: latency at concurrency 1, throughput at saturation.

One run starts the fake model (``promptctl fake-model --latency-ms L --no-access-log``)
and the service (uvicorn, retrieval disabled) on free 127.0.0.1 ports, then sends the same
chat request straight to the fake model ("direct") and as ``POST /v1/answers`` through the
service ("service") from one aiohttp client, alternating the two so that drift hits both
alike. Results are ratios and differences against the direct path measured in the same run,
with the client's own CPU per request and the machine's load; nothing here asserts a speed.
Optionally (``--profile-requests``) the service also runs in process under cProfile to show
where its own time goes. The report copies bench/tried.md (what was tried, kept by hand).

    python -m bench.overhead [--requests N] [--concurrency C] [--latency-ms L] [--output F]

Exit code 0 whether or not the target is met; 1 when the harness itself fails::

    BenchError   a server did not start, a request failed, the prompt could not be adapted
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp

from bench.caveats import TRIED_FILE, fetch_tried
from bench.embedded import FOLDER, measure_embedded
from bench.report import render_report
from bench.results import (
    BenchError,
    LatencyRow,
    Params,
    Results,
    ThroughputRow,
    assess_target,
    build_latency_rows,
    percentile,
)
from bench.retrieval import measure_retrieval
from bench.runner import run
from bench.servers import build_bench_manifest, build_service_env, write_prompts

# The command line lives here and the run in bench.runner; the other names are re-exported
# so that callers of the one-module version (tests/service/test_shedding.py) keep working.
__all__ = [
    "BenchError",
    "LatencyRow",
    "Params",
    "Results",
    "ThroughputRow",
    "assess_target",
    "build_bench_manifest",
    "build_latency_rows",
    "build_service_env",
    "main",
    "parse_args",
    "percentile",
    "render_report",
    "run",
    "write_prompts",
]


def _machine(argv: Sequence[str] | None) -> dict[str, str]:
    shown = sys.argv[1:] if argv is None else list(argv)
    return {
        "command": " ".join(["python -m bench.overhead", *shown]),
        "nproc": str(os.cpu_count() or "?"),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
    }


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def _non_negative(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
        return value

    return parse


def _listed(kind: Callable[[str], Any]) -> Callable[[str], tuple[Any, ...]]:
    def parse(text: str) -> tuple[Any, ...]:
        values = tuple(kind(part) for part in text.split(",") if part.strip())
        if not values:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        return values

    return parse


def _yes_no(text: str) -> bool:
    if text not in ("yes", "no"):
        raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")
    return text == "yes"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return ",".join(f"{v:g}" for v in value) if isinstance(value, tuple) else str(value)


#: Each command-line option: the Params field it sets, its parser and its help.
_OPTIONS: list[tuple[str, Callable[[str], Any], str]] = [
    ("requests", _positive(int), "latency pairs at concurrency 1"),
    ("throughput_requests", _positive(int), "requests per path at saturation (4 x requests)"),
    ("concurrency", _listed(_positive(int)), "workers at saturation, comma-separated"),
    ("latency_ms", _listed(_non_negative(float)), "fake model latencies, ms, comma-separated"),
    ("warmup", _non_negative(int), "warm-up pairs"),
    ("profile_requests", _non_negative(int), "in-process cProfile requests; 0 skips"),
    ("max_seconds", _positive(float), "time cap of the measured phases, per upstream latency"),
    (
        "retrieval_passages",
        _listed(_non_negative(int)),
        "collection sizes of the retrieval measurement, comma-separated; 0 skips",
    ),
    ("embedded", _yes_no, "start the shipped service with the embedded model (yes/no)"),
    ("output", Path, "report to overwrite"),
]


def parse_args(argv: Sequence[str] | None) -> Params:
    """Params from the command line."""
    defaults = Params()
    parser = argparse.ArgumentParser(
        prog="python -m bench.overhead",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for field, kind, text in _OPTIONS:
        flag = "--" + field.replace("_", "-")
        parser.add_argument(
            flag, type=kind, help=f"{text} (default {_shown(getattr(defaults, field))})"
        )
    given = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    if "throughput_requests" not in given and "requests" in given:
        given["throughput_requests"] = 4 * given["requests"]
    return replace(defaults, **given)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the report, write it; 0 unless the harness failed."""
    params = parse_args(argv)
    try:
        results = asyncio.run(run(params))
        sizes = [n for n in params.retrieval_passages if n > 0]
        retrieval = [asyncio.run(measure_retrieval(n)) for n in sizes]
        embedded = (
            [asyncio.run(measure_embedded(store)) for store in (FOLDER, ":memory:")]
            if params.embedded
            else []
        )
    except (BenchError, OSError, aiohttp.ClientError) as error:
        sys.stderr.write(f"bench.overhead: {type(error).__name__}: {error}\n")
        return 1
    tried = fetch_tried(TRIED_FILE)
    if tried is None:
        sys.stderr.write(f"bench.overhead: {TRIED_FILE} not found; the report says so\n")
    report = render_report(results, _machine(argv), retrieval, embedded, tried=tried)
    params.output.parent.mkdir(parents=True, exist_ok=True)
    params.output.write_text(report, encoding="utf-8")
    sys.stdout.write(report)
    sys.stdout.write(f"\nwritten to {params.output}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
