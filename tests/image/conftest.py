"""Fixtures shared by the image tests."""

from __future__ import annotations

import pytest

from tests.image.dockerfile import DOCKERFILE, Dockerfile, parse_dockerfile


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text())
