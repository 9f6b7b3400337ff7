"""server.workers → WEB_CONCURRENCY: from the CPU request by default, never above 1 where
the service would refuse to start (service/workers.py), and an explicit refusal otherwise."""

from __future__ import annotations

from typing import Any

import helm_sdkpy
import pytest

from tests.chart.conftest import Helm
from tests.chart.test_chart import container, env_of
from tests.chart.test_documented_values import _readme_values

SHARED = {"qdrant": {"url": "http://qdrant:6333"}, "redis": {"url": "redis://redis:6379/0"}}


def _server(cpu: Any = None, **server: Any) -> dict[str, Any]:
    requests = {"memory": "512Mi"} if cpu is None else {"cpu": cpu, "memory": "512Mi"}
    return {"server": {"resources": {"requests": requests}, **server}}


#: (case, values, WEB_CONCURRENCY): one release each, installed side by side in one
#: cluster (an install costs seconds). The defaults (1) are checked in
#: test_chart.py::test_defaults_server, a missing Qdrant server by the refusal below.
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("millicores-round-up", {**SHARED, **_server("1500m")}, "2"),
    ("cores-clamped-to-max", {**SHARED, **_server("16", maxWorkers=3)}, "3"),
    ("no-redis-stays-one", {"qdrant": SHARED["qdrant"], **_server("4")}, "1"),
    ("the-readme-example", _readme_values("Workers"), "2"),
    ("explicit-beats-cpu", {**SHARED, **_server("250m", workers=3)}, "3"),
]


def test_workers_follow_the_cpu_request_where_the_service_can_run_them(helm: Helm) -> None:
    for index, (case, values, expected) in enumerate(CASES):
        release = helm.install(values, name=f"w{index}")
        env = env_of(container(release, "server"))
        assert env["WEB_CONCURRENCY"] == {"name": "WEB_CONCURRENCY", "value": expected}, case


@pytest.mark.parametrize(
    "values",
    [_server("4", workers=2), {"qdrant": SHARED["qdrant"], **_server(workers=2)}],
    ids=["embedded-store", "no-redis"],
)
def test_explicit_workers_the_service_would_refuse_fail_the_install(
    helm: Helm, values: dict[str, Any]
) -> None:
    with pytest.raises(helm_sdkpy.InstallError) as caught:
        helm.install(values)
    assert "server.workers=2 needs a Qdrant server" in str(caught.value)
    assert "the service refuses WEB_CONCURRENCY above 1" in str(caught.value)


def test_schema_bounds_workers(helm: Helm) -> None:
    with pytest.raises(helm_sdkpy.InstallError, match="at '/server/workers': maximum"):
        helm.install(_server(workers=65))
