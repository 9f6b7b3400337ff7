"""What an operator sees through kubectl once the controller has written status.

Extends tests/e2e/test_kube_emulator.py (which checks the column header, the spec cells and
a wait on a condition that appears): here the status cells of `kubectl get pver` carry the
values of a status patch and follow the next one, and `kubectl wait` times out (non-zero)
while the condition is absent or not True, then returns once it turns True.

kubectl is the machine's (`kubectl` on PATH, as for every kubectl test); the emulator
(tests/support/kube.py) answers with server-side Tables built from the CRD's printer columns,
as a real API server does.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kube import KubeCluster, run_kube_emulator

pytestmark = pytest.mark.integration

PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"
NAME = "policy-qa-1-1-0"
OTHER = "policy-qa-1-0-0"
#: The CRD's printer columns, as docs/rollouts.md shows them.
HEADER = ["NAME", "PROMPT", "VERSION", "PHASE", "WEIGHT", "STEP", "KIND", "AGE"]


def condition(status: str) -> dict[str, Any]:
    return {"type": "Promoted", "status": status, "reason": "StepsDone", "message": "100%"}


def create_from_prompts(cluster: KubeCluster) -> None:
    """Every PromptVersion in prompts/, created through the API (no status)."""
    for path in sorted(PROMPTS_DIR.glob("*.yaml")):
        body = yaml.safe_load(path.read_text(encoding="utf-8"))
        response = cluster.http.post(cluster.path("default"), json=body)
        assert response.status_code == 201, response.text


@pytest.fixture
def cluster() -> Iterator[KubeCluster]:
    with run_kube_emulator() as running:
        create_from_prompts(running)
        yield running
        assert running.crashes == []


def get_rows(cluster: KubeCluster) -> dict[str, dict[str, str]]:
    """`kubectl get pver`, each row as {column: cell} by object name (a missing value is "")."""
    listed = cluster.kubectl("get", "pver")
    assert listed.returncode == 0, listed.stderr
    header, *lines = listed.stdout.splitlines()
    assert header.split() == HEADER
    # Fixed-width columns: a cell starts where its header starts.
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    rows = [
        {c: line[a:b].strip() for c, (a, b) in zip(HEADER, bounds, strict=True)} for line in lines
    ]
    return {row["NAME"]: row for row in rows}


def test_get_shows_the_patched_status_in_the_printer_columns(cluster: KubeCluster) -> None:
    cluster.patch_status(
        "default",
        NAME,
        {"phase": "Progressing", "weight": 25, "stepIndex": 1, "stepKind": "Canary"},
    )

    rows = get_rows(cluster)
    assert rows[NAME] | {"AGE": "-"} == {
        "NAME": NAME,
        "PROMPT": "policy-qa",
        "VERSION": "1.1.0",
        "PHASE": "Progressing",
        "WEIGHT": "25",
        "STEP": "1",
        "KIND": "Canary",
        "AGE": "-",
    }
    assert re.fullmatch(r"\d+s", rows[NAME]["AGE"]), rows[NAME]["AGE"]
    # No status yet: the status cells are empty (as docs/install.md shows), the spec cells set.
    assert [rows[OTHER][c] for c in ("PROMPT", "VERSION", "PHASE", "WEIGHT", "STEP")] == [
        "policy-qa",
        "1.0.0",
        "",
        "",
        "",
    ]

    shadow = {"weight": 0, "stepIndex": 0, "stepKind": "Shadow", "shadowPercent": 50}
    cluster.patch_status("default", NAME, shadow)
    row = get_rows(cluster)[NAME]
    assert (row["WEIGHT"], row["STEP"], row["KIND"]) == ("0", "0", "Shadow")

    cluster.patch_status("default", NAME, {"phase": "Promoted", "weight": 100, "stepIndex": 3})
    row = get_rows(cluster)[NAME]
    assert (row["PHASE"], row["WEIGHT"], row["STEP"]) == ("Promoted", "100", "3")


def test_get_one_object_by_name_prints_the_same_row(cluster: KubeCluster) -> None:
    cluster.patch_status("default", NAME, {"phase": "Paused", "weight": 10, "stepIndex": 0})
    result = cluster.kubectl("get", "pver", NAME, "--no-headers")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:6] == [NAME, "policy-qa", "1.1.0", "Paused", "10", "0"]


@pytest.mark.parametrize(
    "status",
    [
        None,
        {"phase": "Progressing", "conditions": [condition("False")]},
        {"conditions": [{**condition("True"), "type": "Progressing"}]},
    ],
    ids=["no-status", "condition-false", "other-condition-true"],
)
def test_wait_times_out_non_zero_without_the_condition(
    cluster: KubeCluster, status: dict[str, Any] | None
) -> None:
    # Another object already has it: the wait must look at NAME only.
    cluster.patch_status("default", OTHER, {"conditions": [condition("True")]})
    if status is not None:
        cluster.patch_status("default", NAME, status)
    started = time.monotonic()
    result = cluster.kubectl("wait", "--for=condition=Promoted", f"pver/{NAME}", "--timeout=2s")
    elapsed = time.monotonic() - started
    assert result.returncode != 0, result.stdout
    assert "timed out" in result.stderr
    assert NAME in result.stderr
    assert 1.5 <= elapsed < 20


def test_wait_returns_once_a_false_condition_turns_true(cluster: KubeCluster) -> None:
    cluster.patch_status(
        "default", NAME, {"phase": "Progressing", "conditions": [condition("False")]}
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(
            cluster.kubectl, "wait", "--for=condition=Promoted", f"pver/{NAME}", "--timeout=20s"
        )
        time.sleep(1.0)
        assert not waiting.done()
        cluster.patch_status(
            "default", NAME, {"phase": "Promoted", "conditions": [condition("True")]}
        )
        patched = time.monotonic()
        result = waiting.result(timeout=30)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - patched < 5
    assert f"promptversion.promptrollouts.io/{NAME} condition met" in result.stdout


def test_wait_for_a_status_field_with_jsonpath(cluster: KubeCluster) -> None:
    cluster.patch_status("default", NAME, {"phase": "Progressing"})
    timed_out = cluster.kubectl(
        "wait", "--for=jsonpath={.status.phase}=Promoted", f"pver/{NAME}", "--timeout=1s"
    )
    assert timed_out.returncode != 0
    cluster.patch_status("default", NAME, {"phase": "Promoted"})
    met = cluster.kubectl(
        "wait", "--for=jsonpath={.status.phase}=Promoted", f"pver/{NAME}", "--timeout=10s"
    )
    assert met.returncode == 0, met.stderr
    assert "condition met" in met.stdout


def test_get_wide_shows_the_quality_line(cluster: KubeCluster) -> None:
    line = (
        "Failed: unknown rate 31 % vs 12 % stable, +19 pts (max +2 pts), p < 0.001, n = 412/1,930"
    )
    cluster.patch_status("default", NAME, {"phase": "RolledBack", "weight": 0, "quality": line})
    narrow = cluster.kubectl("get", "pver", NAME, "--no-headers")
    assert narrow.returncode == 0, narrow.stderr
    assert "unknown rate" not in narrow.stdout  # a sentence: only in the wide view
    wide = cluster.kubectl("get", "pver", NAME, "-o", "wide")
    assert wide.returncode == 0, wide.stderr
    header, row = wide.stdout.splitlines()
    assert header.split() == [*HEADER[:-1], "QUALITY", "AGE"]
    assert line in row
