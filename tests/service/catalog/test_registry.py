"""Which version serves a request: local weights, sticky weighted choice, pinning."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from api.v1alpha1 import Phase, PromptVersion
from prompting.servability import check_servable
from service.catalog.registry import (
    InvalidVersion,
    PromptRegistry,
    ServedVersion,
    assign_local_weights,
    choose_by_weight,
)
from service.errors import PromptNotFoundError


def _version(
    prompt: str,
    version: str,
    *,
    user: str = "{{ question }} {{ context }}",
    collection: str = "policies",
    name: str | None = None,
) -> PromptVersion:
    data: dict[str, Any] = {
        "apiVersion": "promptrollouts.io/v1alpha1",
        "kind": "PromptVersion",
        "metadata": {"name": name or f"{prompt}-{version.replace('.', '-')}"},
        "spec": {
            "prompt": prompt,
            "version": version,
            "owner": "team",
            "template": {"system": "Be precise.", "user": user},
            "model": {"name": "m"},
            "retrieval": {"collection": collection},
        },
    }
    return PromptVersion.model_validate(data)


def _phases(
    resources: list[PromptVersion], problems: dict[str, str] | None = None
) -> list[tuple[str, Phase, int]]:
    return [
        (r.spec.version, phase, weight)
        for r, phase, weight, _ in assign_local_weights(resources, problems or {})
    ]


def test_highest_semver_is_stable_and_older_superseded() -> None:
    resources = [_version("qa", "1.9.0"), _version("qa", "1.10.0"), _version("qa", "1.10.0-rc.1")]
    assert _phases(resources) == [
        ("1.10.0", Phase.STABLE, 100),
        ("1.10.0-rc.1", Phase.SUPERSEDED, 0),
        ("1.9.0", Phase.SUPERSEDED, 0),
    ]


def test_pre_release_is_stable_only_without_a_release() -> None:
    assert _phases([_version("qa", "1.0.0"), _version("qa", "1.1.0-rc.1")]) == [
        ("1.1.0-rc.1", Phase.SUPERSEDED, 0),
        ("1.0.0", Phase.STABLE, 100),
    ]
    assert _phases([_version("qa", "1.1.0-rc.1"), _version("qa", "1.1.0-rc.2")]) == [
        ("1.1.0-rc.2", Phase.STABLE, 100),
        ("1.1.0-rc.1", Phase.SUPERSEDED, 0),
    ]


def test_invalid_newest_version_leaves_the_previous_one_stable() -> None:
    resources = [_version("qa", "1.0.0"), _version("qa", "2.0.0")]
    assert _phases(resources, {"qa-2-0-0": "bad template"}) == [
        ("2.0.0", Phase.INVALID, 0),
        ("1.0.0", Phase.STABLE, 100),
    ]


def test_duplicate_version_is_invalid() -> None:
    resources = [_version("qa", "1.0.0"), _version("qa", "1.0.0", name="qa-copy")]
    phases = [phase for _, phase, _ in _phases(resources)]
    assert sorted(phases) == sorted([Phase.STABLE, Phase.INVALID])


@pytest.mark.parametrize(
    ("user", "collections", "reason"),
    [
        ("{{ question }} {{ context }}", {"policies"}, None),
        ("{{ question }} {{ tone }}", {"policies"}, "undeclared variables: tone"),
        ("{{ question }", {"policies"}, "template.user"),
        ("{{ question }}", set(), "'policies' does not exist"),
        ("{{ question }}", None, None),
    ],
    ids=[
        "servable",
        "undeclared-variable",
        "syntax-error",
        "missing-collection",
        "unchecked-collections",
    ],
)
def test_check_servable(user: str, collections: set[str] | None, reason: str | None) -> None:
    found = check_servable(_version("qa", "1.0.0", user=user), collections)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found


@pytest.mark.parametrize(
    "weights",
    [[100], [90, 10], [50, 50], [1, 99], [0, 100], [25, 25, 50]],
    ids=["single", "canary-10", "half", "canary-99", "zero-weight", "three-way"],
)
def test_choose_by_weight_follows_the_weights(weights: list[int]) -> None:
    counts = Counter(choose_by_weight(weights, f"user-{i}") for i in range(20_000))
    for index, weight in enumerate(weights):
        assert counts[index] / 20_000 == pytest.approx(weight / 100, abs=0.015)


def test_choose_by_weight_is_sticky() -> None:
    assert {choose_by_weight([50, 50], "alice") for _ in range(50)} == {
        choose_by_weight([50, 50], "alice")
    }


def test_choose_by_weight_refuses_all_zero() -> None:
    with pytest.raises(ValueError, match="positive weight"):
        choose_by_weight([0, 0], "x")


def test_select_pins_versions_and_refuses_invalid_or_unknown() -> None:
    registry = PromptRegistry.from_resources(
        [
            _version("qa", "1.0.0"),
            _version("qa", "1.1.0"),
            _version("qa", "2.0.0", collection="gone"),
        ],
        {"policies"},
    )
    assert registry.select("qa", None, "anyone").version == "1.1.0"
    assert registry.select("qa", "1.0.0", "anyone").version == "1.0.0"
    with pytest.raises(PromptNotFoundError, match=r"Invalid: retrieval\.collection 'gone'"):
        registry.select("qa", "2.0.0", "anyone")
    with pytest.raises(PromptNotFoundError, match=r"no version '3\.0\.0'"):
        registry.select("qa", "3.0.0", "anyone")
    with pytest.raises(PromptNotFoundError, match="no PromptVersion serves prompt 'other'"):
        registry.select("other", None, "anyone")


def test_versions_are_servable_or_invalid_by_type() -> None:
    registry = PromptRegistry.from_resources(
        [_version("qa", "1.0.0"), _version("qa", "2.0.0", user="{{ nope }}")], {"policies"}
    )
    kinds = {v.version: type(v) for v in registry.versions()}
    assert kinds == {"1.0.0": ServedVersion, "2.0.0": InvalidVersion}
    (invalid,) = [v for v in registry.versions() if isinstance(v, InvalidVersion)]
    assert (invalid.phase, invalid.weight) == (Phase.INVALID, 0)
    assert invalid.message == "templates use undeclared variables: nope"
    served = registry.select("qa", None, "anyone")
    assert isinstance(served, ServedVersion) and served.compiled.canary


def test_a_routing_file_cannot_send_traffic_to_an_invalid_version() -> None:
    base = PromptRegistry.from_resources(
        [_version("qa", "1.0.0"), _version("qa", "2.0.0", collection="gone")], {"policies"}
    )
    routed = PromptRegistry.with_routing(base, {"qa": {"1.0.0": 10, "2.0.0": 90}})
    assert {v.version: v.weight for v in routed.versions()} == {"1.0.0": 10, "2.0.0": 0}
    assert {routed.select("qa", None, f"user-{n}").version for n in range(50)} == {"1.0.0"}
