"""Which eval sets a branch must run, and against which versions: the prompts workflow's plan.

A prompt is *changed* when a manifest declaring it, or an eval set naming it, changed
between the target branch (``--base``) and the working tree. For each changed prompt the
candidate is its highest version in the working tree and the baseline its highest
version on the target branch (the candidate itself for a new prompt). A released
version's spec is immutable (the CRD's rule): editing it in place is a problem, and so is
a changed prompt without an eval set.

    decide_plan(base, head, changed_prompts, evalsets) -> (list[PlannedEval], problems)  pure

``python -m promptctl.evals.plan --base origin/main`` prints one tab-separated line per
eval to run (prompt, baseline, candidate, eval set) and exits 2 on a problem.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import semver
import yaml

from api.v1alpha1.manifests import ManifestError, manifest_files, parse_manifest

__all__ = ["PlannedEval", "decide_plan", "main"]

#: (prompt, version) -> the spec as plain data.
Specs = Mapping[tuple[str, str], Any]


@dataclass(frozen=True)
class PlannedEval:
    """One `promptctl eval` run."""

    prompt: str
    baseline: str
    candidate: str
    evalset: str


def _highest(specs: Specs, prompt: str) -> str | None:
    versions = [v for p, v in specs if p == prompt]
    return max(versions, key=semver.Version.parse) if versions else None


def decide_plan(
    base: Specs, head: Specs, changed_prompts: set[str], evalsets: Mapping[str, str]
) -> tuple[list[PlannedEval], list[str]]:
    """The evals to run, and the problems that stop the plan (`evalsets`: prompt -> file)."""
    problems = [
        f"{prompt} {version}: the spec of a released version changed; add a new version instead"
        for (prompt, version), spec in sorted(head.items())
        if (prompt, version) in base and base[(prompt, version)] != spec
    ]
    plan: list[PlannedEval] = []
    for prompt in sorted(changed_prompts):
        candidate = _highest(head, prompt)
        if candidate is None:
            continue  # the prompt was removed: nothing to evaluate
        if prompt not in evalsets:
            problems.append(f"{prompt} changed but no eval set names it (evals/*.yaml)")
            continue
        baseline = _highest(base, prompt) or candidate
        plan.append(PlannedEval(prompt, baseline, candidate, evalsets[prompt]))
    return plan, problems


def _git(*args: str) -> str:
    command = ["git", *args]
    # Fixed git arguments, no shell; git comes from PATH like in any CI job.
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout  # noqa: S603


def _specs_of(
    documents: list[tuple[str, str]],
) -> tuple[dict[tuple[str, str], Any], dict[str, set[str]]]:
    """Specs by (prompt, version), and the prompts each file declares."""
    specs: dict[tuple[str, str], Any] = {}
    declared: dict[str, set[str]] = {}
    for path, text in documents:
        for data in yaml.safe_load_all(text):
            if not isinstance(data, dict):
                continue
            try:
                resource = parse_manifest(data, path)
            except ManifestError:
                continue  # `promptctl lint` reports it
            key = (resource.spec.prompt, resource.spec.version)
            specs[key] = resource.spec.model_dump(mode="json")
            declared.setdefault(path, set()).add(resource.spec.prompt)
    return specs, declared


def _evalsets(folder: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("prompt"), str):
            found.setdefault(data["prompt"], str(path))
    return found


def main(argv: list[str] | None = None) -> int:
    """Print the plan for the working tree against `--base`; 2 on a problem."""
    parser = argparse.ArgumentParser(prog="python -m promptctl.evals.plan")
    parser.add_argument("--base", default="origin/main", help="The target branch (a git ref).")
    parser.add_argument("--prompts", default="prompts")
    parser.add_argument("--evals", default="evals")
    args = parser.parse_args(argv)
    try:
        merge_base = _git("merge-base", args.base, "HEAD").strip()
        base_files = _git("ls-tree", "-r", "--name-only", merge_base, "--", args.prompts).split()
        base_docs = [
            (f, _git("show", f"{merge_base}:{f}"))
            for f in base_files
            if f.endswith((".yaml", ".yml"))
        ]
        changed = _git("diff", "--name-only", merge_base, "--", args.prompts, args.evals).split()
        changed += _git(
            "ls-files", "--others", "--exclude-standard", args.prompts, args.evals
        ).split()
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        sys.stderr.write(f"error: git cannot compare with {args.base}: {detail.strip()}\n")
        return 2
    head_docs = [
        (str(f), f.read_text(encoding="utf-8")) for f in manifest_files(Path(args.prompts))
    ]
    base, base_declared = _specs_of(base_docs)
    head, head_declared = _specs_of(head_docs)
    evalsets = _evalsets(Path(args.evals))
    by_file = {file: prompt for prompt, file in evalsets.items()}
    prompts: set[str] = set()
    for path in changed:
        prompts |= head_declared.get(path, set()) | base_declared.get(path, set())
        if path in by_file:
            prompts.add(by_file[path])
    plan, problems = decide_plan(base, head, prompts, evalsets)
    for problem in problems:
        sys.stderr.write(f"error: {problem}\n")
    for item in plan:
        sys.stdout.write(f"{item.prompt}\t{item.baseline}\t{item.candidate}\t{item.evalset}\n")
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
