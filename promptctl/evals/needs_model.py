"""Whether a prompt's eval set needs a model server: a version declares ``output`` or ``tools``.

The embedded extractive answerer (no ``MODEL_BASE_URL``) cannot call tools or write JSON,
so a version with an output contract ends ``invalid_output`` offline, and one with tools
never calls them. Prompt CI (``scripts/prompt-ci.sh``) evaluates such prompts against the
fake model (``promptctl fake-model``) when no ``MODEL_BASE_URL`` is given, and every other
prompt offline.

    assess_needs_model(documents, prompt) -> bool      pure

``python -m promptctl.evals.needs_model PROMPT [--prompts DIR]`` exits 0 when the prompt
needs a model, 1 when it does not, 2 when no manifest in DIR declares it (or one cannot be
read).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from api.v1alpha1.manifests import ManifestError, manifest_files

__all__ = ["MODEL_FEATURES", "assess_needs_model", "fetch_documents", "main"]

#: Spec fields only a model server can honour.
MODEL_FEATURES = ("output", "tools")


def _spec(document: object) -> Mapping[str, Any]:
    spec = document.get("spec") if isinstance(document, Mapping) else None
    return spec if isinstance(spec, Mapping) else {}


def assess_needs_model(documents: Iterable[object], prompt: str) -> bool | None:
    """True when a version of `prompt` declares a field in :data:`MODEL_FEATURES`, False
    when none does, None when no document declares `prompt` (pure)."""
    found = False
    for document in documents:
        spec = _spec(document)
        if spec.get("prompt") != prompt:
            continue
        found = True
        if any(spec.get(field) for field in MODEL_FEATURES):
            return True
    return False if found else None


def fetch_documents(folder: Path) -> list[object]:
    """Every YAML document of the manifests in `folder`."""
    documents: list[object] = []
    for path in manifest_files(folder):
        documents.extend(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    return documents


def main(argv: list[str] | None = None) -> int:
    """Exit 0 (needs a model), 1 (does not) or 2 (unknown prompt, unreadable manifests)."""
    parser = argparse.ArgumentParser(prog="python -m promptctl.evals.needs_model")
    parser.add_argument("prompt", help="The prompt name (spec.prompt).")
    parser.add_argument("--prompts", type=Path, default=Path("prompts"), help="Manifest folder.")
    args = parser.parse_args(argv)
    try:
        documents = fetch_documents(args.prompts)
    except (ManifestError, OSError, yaml.YAMLError) as error:
        sys.stderr.write(f"error: cannot read the manifests in {args.prompts}: {error}\n")
        return 2
    needs = assess_needs_model(documents, args.prompt)
    if needs is None:
        sys.stderr.write(f"error: no manifest in {args.prompts} declares prompt {args.prompt!r}\n")
        return 2
    return 0 if needs else 1


if __name__ == "__main__":  # python -m promptctl.evals.needs_model (scripts/prompt-ci.sh)
    sys.exit(main())
