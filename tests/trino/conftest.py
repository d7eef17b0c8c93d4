"""One Trino server for every Trino test of the session (it takes ~30 s to start), and
the twin-engine bake helpers. Trino must be installed (`uv run bakery engine install
trino`, which .ci/run does): without it these tests fail saying so, never skip."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bakery.trino import server as trino_server


@pytest.fixture(scope="session")
def trino() -> Iterator[trino_server.Server]:
    with trino_server.running() as server:
        yield server


@pytest.fixture(scope="session")
def repo() -> Path:
    return Path(__file__).resolve().parents[2]
