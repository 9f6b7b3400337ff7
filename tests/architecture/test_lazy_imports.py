"""Heavy libraries stay out of the service's start-up unless the settings need them.

Cold start to ready is an issue-15 goal (<= 2 s), and imports were most of it: qdrant-client
alone was ~1/3 (docs/benchmarks-performance.md, "Cold start"). Each library below is
imported where it is used, inside the function that needs it:

- qdrant-client (and grpc) when a Qdrant server or folder store is opened
  (``QDRANT_PATH=:memory:`` is a :class:`service.retrieval.store.MemoryStore`);
- numpy when a vector is first computed or stored, onnxruntime and tokenizers when the
  bundled embedding model loads;
- aiohttp when an upstream is configured (``MODEL_BASE_URL``, ``EMBEDDING_BASE_URL``) or
  first called;
- redis when ``REDIS_URL`` is set;
- the OpenTelemetry SDK when tracing is on.

A fresh interpreter (a subprocess: this test process has imported them all) imports the
app, then runs its lifespan with such settings, and lists what got imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Never imported by ``import service.app`` / ``service.server``.
LAZY = ("qdrant_client", "grpc", "numpy", "onnxruntime", "tokenizers", "aiohttp", "redis")
LAZY_SDK = ("opentelemetry.sdk", "opentelemetry.exporter", "opentelemetry.instrumentation")

_PROBE = """
import asyncio, json, sys
import service.server
from service.app import create_app
from service.settings import Settings

def loaded():
    return sorted({m for m in sys.modules if m.split(".")[0] in PREFIXES or
                   any(m == p or m.startswith(p + ".") for p in DOTTED)})

at_import = loaded()

async def start():
    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        return loaded()

print(json.dumps({"import": at_import, "ready": asyncio.run(start())}))
"""


def run_probe(environ: dict[str, str]) -> dict[str, list[str]]:
    """What a fresh interpreter imported after ``import service.server``, and when ready."""
    prefixes = [name for name in LAZY if "." not in name]
    code = f"PREFIXES = {prefixes!r}\nDOTTED = {list(LAZY_SDK)!r}\n{_PROBE}"
    names = {"PROMPTS_DIR", "CORPORA", "CORPUS_DIR", "QDRANT_PATH", "QDRANT_URL", "REDIS_URL"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k not in names}
    env |= {
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "WARNING",
        "MODEL_BASE_URL": "",
        "EMBEDDING_BASE_URL": "",
    } | environ
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_start_up_without_retrieval_imports_none_of_the_heavy_libraries() -> None:
    probe = run_probe(
        {"PROMPTS_DIR": str(ROOT / "prompts"), "CORPUS_DIR": "", "QDRANT_PATH": ":memory:"}
    )
    assert probe["import"] == []
    assert probe["ready"] == []


def test_the_probe_sees_what_the_settings_do_need() -> None:
    """The same probe with corpora indexed at start-up loads the model: it can fail."""
    probe = run_probe(
        {
            "PROMPTS_DIR": str(ROOT / "prompts"),
            "CORPORA": "faq=data/faq",
            "QDRANT_PATH": ":memory:",
        }
    )
    assert probe["import"] == []
    assert {"onnxruntime", "tokenizers"} <= set(probe["ready"])
    assert not {name for name in probe["ready"] if name.split(".")[0] in {"qdrant_client", "redis"}}
