"""Commands registered on the bakery app (filled in by their own issue)."""

from __future__ import annotations

from bakery.cli.common import app  # noqa: F401
