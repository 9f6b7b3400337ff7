"""Scenario files: validation with errors naming file and field, paths, and --speed (pure)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from rehearsal.scenario import ScenarioError
from rehearsal.scenario_loading import load_scenario
from rehearsal.speed import build_rehearsal_manifest, decide_timing, format_duration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "rehearsals"
SHIPPED = sorted(p.name for p in EXAMPLES.glob("*.yaml"))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the shipped examples' manifests and questions, to write scenarios next to."""
    shutil.copytree(EXAMPLES / "manifests", tmp_path / "manifests")
    shutil.copy(EXAMPLES / "questions.txt", tmp_path / "questions.txt")
    (tmp_path / "corpus").mkdir()
    return tmp_path


def _scenario(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "manifests": ["manifests/stable.yaml", "manifests/canary.yaml"],
        "traffic": {"rps": 5, "users": 10, "duration": "60s", "questions": "questions.txt"},
        "models": {"model-b": {"errorRate": 0.2, "latencyMs": 10}},
        "feedback": {"1.1.0": {"rate": 0.5, "negative": 0.2}},
        "expect": {"1.1.0": "RolledBack"},
    }
    for key, value in changes.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def _write(folder: Path, body: Any, name: str = "scenario.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(body) if not isinstance(body, str) else body)
    return path


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_scenario_loads(name: str) -> None:
    loaded = load_scenario(EXAMPLES / name)

    assert loaded.versions == ["1.0.0", "1.1.0"]
    assert loaded.prompt == "policy-rehearsal"
    assert loaded.scenario.expect, "every shipped scenario says what it expects"
    assert loaded.corpus_dir == (ROOT / "data" / "policies").resolve()


def test_a_scenario_loads_with_paths_relative_to_it(folder: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    path = _write(folder, _scenario(corpus={"collection": "policies", "dir": "corpus"}))

    loaded = load_scenario(path)

    assert loaded.models == ["model-a", "model-b"]
    assert loaded.corpus_dir == (folder / "corpus").resolve()
    assert len(loaded.questions) == 12
    faults = loaded.scenario.models["model-b"].to_faults()
    assert (faults.status, faults.error_rate, faults.latency_ms) == (500, 0.2, 10.0)


def test_questions_may_be_a_list(folder: Path) -> None:
    traffic = {"rps": 5, "duration": "10s", "questions": ["What is the refund window?"]}

    loaded = load_scenario(_write(folder, _scenario(traffic=traffic)))

    assert loaded.questions == ["What is the refund window?"]
    assert loaded.scenario.traffic.users == 100


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"traffic": None}, "traffic: Field required", id="no-traffic"),
        pytest.param(
            {"traffic": {"rps": 0, "duration": "1m", "questions": "questions.txt"}},
            "traffic.rps: Input should be greater than 0",
            id="rps-0",
        ),
        pytest.param(
            {"traffic": {"rps": 500, "duration": "1m", "questions": "questions.txt"}},
            "traffic.rps: Input should be less than or equal to 100",
            id="rps-unbounded",
        ),
        pytest.param(
            {"traffic": {"rps": 5, "duration": "3 minutes", "questions": "q.txt"}},
            "traffic.duration: String should match pattern",
            id="duration",
        ),
        pytest.param(
            {"traffic": {"rps": 5, "duration": "0s", "questions": "q.txt"}},
            "traffic.duration: must be longer than 0s",
            id="duration-0",
        ),
        pytest.param({"sed": 7}, "sed: Extra inputs are not permitted", id="typo-key"),
        pytest.param(
            {"models": {"model-b": {"eror_rate": 0.1}}},
            "models.model-b.eror_rate: Extra inputs are not permitted",
            id="model-typo",
        ),
        pytest.param(
            {"models": {"model-b": {"unknownRate": 0.7, "refuseRate": 0.6}}},
            "models.model-b: refuseRate + unknownRate + uncitedRate + invalidJsonRate + "
            "offSchemaRate must be at most 1",
            id="rates-add-up",
        ),
        pytest.param(
            {"models": {"model-c": {"errorRate": 0.1}}},
            "models.model-c: not a model used by the manifests",
            id="unused-model",
        ),
        pytest.param(
            {"feedback": {"2.0.0": {"rate": 0.1}}},
            "feedback.2.0.0: not a version in the manifests",
            id="feedback-version",
        ),
        pytest.param(
            {"feedback": {"1.1.0": {"rate": 1.5}}},
            "feedback.1.1.0.rate: Input should be less than or equal to 1",
            id="feedback-rate",
        ),
        pytest.param(
            {"expect": {"1.1.0": "Rolledback"}},
            "expect.1.1.0.phase: Input should be",
            id="phase-typo",
        ),
        pytest.param(
            {"expect": {"9.9.9": "Promoted"}},
            "expect.9.9.9: not a version in the manifests",
            id="expect-version",
        ),
        pytest.param({"manifests": []}, "manifests: List should have at least 1", id="none"),
        pytest.param(
            {"manifests": ["manifests/stable.yaml", "manifests/missing.yaml"]},
            "manifests[1]: cannot read",
            id="missing-manifest",
        ),
        pytest.param(
            {"manifests": ["manifests/stable.yaml", "manifests/stable.yaml"]},
            "a version appears twice",
            id="same-twice",
        ),
        pytest.param(
            {"corpus": {"collection": "policies", "dir": "nowhere"}},
            "corpus.dir:",
            id="corpus-missing",
        ),
        pytest.param(
            {"corpus": {"collection": "Bad Name", "dir": "corpus"}},
            "corpus.collection: String should match pattern",
            id="collection-name",
        ),
    ],
)
def test_bad_scenarios_name_the_file_and_the_field(
    folder: Path, changes: dict[str, Any], message: str
) -> None:
    path = _write(folder, _scenario(**changes))

    with pytest.raises(ScenarioError, match=re.escape(message)) as caught:
        load_scenario(path)

    assert str(path.parent) in str(caught.value)


def test_an_invalid_manifest_is_named_with_its_field(folder: Path) -> None:
    canary = yaml.safe_load((folder / "manifests" / "canary.yaml").read_text())
    canary["spec"]["rollout"]["analysis"]["maxErrorRate"] = 7
    (folder / "manifests" / "canary.yaml").write_text(yaml.safe_dump(canary))

    with pytest.raises(ScenarioError, match=r"canary\.yaml \(manifests\[1\]\): not a valid "):
        load_scenario(_write(folder, _scenario()))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "a scenario is one YAML mapping", id="empty"),
        pytest.param("- a\n- b\n", "a scenario is one YAML mapping", id="list"),
        pytest.param("manifests: [a\n", "not valid YAML", id="broken-yaml"),
    ],
)
def test_unreadable_scenarios(folder: Path, text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        load_scenario(_write(folder, text))


def test_a_missing_scenario_file() -> None:
    with pytest.raises(ScenarioError, match=r"scenario: cannot read /nonexistent\.yaml"):
        load_scenario(Path("/nonexistent.yaml"))


# --- --speed ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(10, "10s"), (2.5, "2500ms"), (0.0001, "1ms"), (60, "60s"), (0.25, "250ms")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def _manifest(analysis: dict[str, Any]) -> dict[str, Any]:
    return {
        "spec": {
            "prompt": "p",
            "version": "1.1.0",
            "rollout": {
                "steps": [{"weight": 20, "pause": "40s"}, {"weight": 50}],
                "analysis": analysis,
            },
        }
    }


@pytest.mark.parametrize(
    ("analysis", "speed", "expected", "notes"),
    [
        pytest.param({"interval": "8s", "window": "20s"}, 1, ("8s", "20s", "40s"), 0, id="x1"),
        pytest.param({"interval": "8s", "window": "20s"}, 4, ("2s", "5s", "10s"), 0, id="x4"),
        pytest.param({}, 4, ("2500ms", "15s", "10s"), 0, id="defaults-10s-1m"),
        pytest.param({"interval": "2s", "window": "10s"}, 8, ("1s", "5s", "5s"), 2, id="floors"),
        pytest.param({"interval": "500ms", "window": "3s"}, 2, ("500ms", "3s", "20s"), 2, id="low"),
    ],
)
def test_speed_divides_pauses_interval_and_window(
    analysis: dict[str, Any], speed: float, expected: tuple[str, str, str], notes: int
) -> None:
    original = _manifest(dict(analysis))

    scaled, found = build_rehearsal_manifest(original, speed)

    rollout = scaled["spec"]["rollout"]
    got = (rollout["analysis"].get("interval"), rollout["analysis"].get("window"))
    if speed == 1 and not analysis:
        got = ("10s", "1m")
    assert (*got, rollout["steps"][0]["pause"]) == expected
    assert "pause" not in rollout["steps"][1]
    assert len(found) == notes
    assert original == _manifest(dict(analysis)), "the input is not changed"


def test_speed_divides_the_traffic_duration(folder: Path) -> None:
    loaded = load_scenario(_write(folder, _scenario()))

    assert decide_timing(loaded.scenario, 4).duration_seconds == 15.0
    assert decide_timing(loaded.scenario, 1).duration_seconds == 60.0
