"""Where the service's own time goes: the app called as ASGI in process, under cProfile."""

from __future__ import annotations

import asyncio
import cProfile
import gc
import pstats
import sysconfig
import time
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import uvloop
from starlette.types import ASGIApp, Message, Scope

from bench.results import REPO, BenchError, Hotspot, Profile
from service.settings import Settings

__all__ = ["build_profile", "classify_frame", "post_answer", "profile_in_process"]

#: Own-time hotspots listed in the report.
TOP_FUNCTIONS = 10
_STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


def classify_frame(filename: str) -> str:
    """The package a profiled function belongs to, from its file name."""
    if filename == "~":
        return "C builtins"
    path = Path(filename)
    if "site-packages" in path.parts:
        return path.parts[path.parts.index("site-packages") + 1].removesuffix(".py")
    resolved = path.resolve()
    for root, prefix in ((REPO, ""), (_STDLIB, "stdlib ")):
        if resolved.is_relative_to(root):
            return prefix + resolved.relative_to(root).parts[0].removesuffix(".py")
    return "other"


_Func = tuple[str, int, str]


def build_profile(stats: pstats.Stats, requests: int) -> Profile:
    """Own time per package and the top functions, without the selector's idle wait.

    Time in C builtins (socket calls, json, locks) goes to the package that called them.
    """
    raw: Mapping[_Func, tuple[int, int, float, float, Mapping[_Func, tuple[Any, ...]]]]
    raw = getattr(stats, "stats", {})
    own: dict[_Func, float] = {
        func: entry[2]
        for func, entry in raw.items()
        if not ("poll" in func[2] and "select" in func[2])
    }
    total = sum(own.values()) or 1.0
    by_package: dict[str, float] = defaultdict(float)
    for func, seconds in own.items():
        callers = raw[func][4]
        if func[0] != "~" or not callers:
            by_package[classify_frame(func[0])] += seconds
            continue
        for caller, (_, _, caller_own, *_rest) in callers.items():
            by_package[classify_frame(caller[0])] += caller_own

    def spot(name: str, seconds: float) -> Hotspot:
        return Hotspot(name, seconds / requests * 1e6, seconds / total)

    top = sorted(own.items(), key=lambda kv: kv[1], reverse=True)[:TOP_FUNCTIONS]
    return Profile(
        requests,
        [spot(n, t) for n, t in sorted(by_package.items(), key=lambda kv: kv[1], reverse=True)],
        [
            spot(f"{classify_frame(f)}:{Path(f).name}:{line}({name})", t)
            for (f, line, name), t in top
        ],
    )


async def post_answer(app: ASGIApp, body: bytes) -> int:
    """One ``POST /v1/answers`` straight into the ASGI `app` (no server, no test client);
    the response's status. The client disconnects once the response has been sent."""
    sent: list[Message] = []
    delivered = asyncio.Event()
    finished = asyncio.Event()

    async def receive() -> Message:
        if not delivered.is_set():
            delivered.set()
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            finished.set()

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/answers",
        "raw_path": b"/v1/answers",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    status: int = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status


async def profile_in_process(
    prompts_dir: Path,
    model_base_url: str,
    body: bytes,
    requests: int,
    deadline_ns: int,
    concurrency: int = 1,
) -> Profile:
    """Call the service app as ASGI under cProfile, `concurrency` requests at a time.

    On uvloop in a thread of its own, as `python -m service` runs the app: on asyncio's
    pure-Python loop (the bench's own) the profile would charge the service for a
    scheduler it does not use (a quarter of the loop's time, fifth session).
    """
    work = _profile(prompts_dir, model_base_url, body, requests, deadline_ns, concurrency)
    return await asyncio.to_thread(uvloop.run, work)


async def _profile(
    prompts_dir: Path,
    model_base_url: str,
    body: bytes,
    requests: int,
    deadline_ns: int,
    concurrency: int,
) -> Profile:
    from service.app import create_app  # noqa: PLC0415 - only the profile needs the app

    settings = Settings(
        prompts_dir=prompts_dir,
        corpus_dir=None,
        qdrant_path=":memory:",
        model_base_url=model_base_url,
        log_level="WARNING",
    )
    # As `python -m service` serves it: the collector settled once started (undone below).
    app = create_app(settings, settle_gc=True)
    thresholds = gc.get_threshold()

    async def one() -> None:
        status = await post_answer(app, body)
        if status != 200:
            raise BenchError(f"in-process /v1/answers: {status}")

    # Thread CPU time, not wall time: waiting on the GIL or the selector is not own time.
    profiler = cProfile.Profile(time.thread_time_ns, 1e-9)
    done = 0
    async with app.router.lifespan_context(app):
        for _ in range(20):
            await one()
        profiler.enable()
        try:
            while done < requests and time.perf_counter_ns() < deadline_ns:
                batch = min(concurrency, requests - done)
                await asyncio.gather(*(one() for _ in range(batch)))
                done += batch
        finally:
            profiler.disable()
            gc.unfreeze()
            gc.set_threshold(*thresholds)
    return build_profile(pstats.Stats(profiler), max(1, done))
