"""Where a reader finds published data while a publish is unfinished; read-only.

A bake killed while publishing (bakery/engine/publish.py) leaves its journal in
`s3://BUCKET/.bakery-staging/<run>.publish.json`, and the published location of a move
it had not finished may be missing (locally: killed between the two renames) or half
copied (S3). The journal is the truth: the next bake rolls every move forward, so the
data published is the staged copy of each unfinished move. `resolve` says where that
is, for a reader that must not wait for the next bake nor write to the store: it
moves, copies and deletes nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from bakery.engine.publish import (  # the journal's format and proofs, read in one place
    MARKER,
    STAGING,
    Move,
    PublishFailed,
    _identity,
    _read_journal,
)
from bakery.store import LocalStore, Store, split_uri

JOURNAL_SUFFIX = ".publish.json"


@dataclass(frozen=True)
class View:
    location: str  # where the published data of the location asked for is now
    journal: str | None = None  # the unfinished publish read through, if one was


def resolve(store: Store, plan: Any, location: str) -> View:
    """Where to read what is published at `location` (an s3:// prefix ending in '/').

    Raises PublishFailed (one line) when a journal is damaged, or names a move that the
    next bake could not finish either: then nobody can say what is published."""
    for bucket in _buckets(plan):
        for journal in _journals(store, bucket):
            for move in _read_journal(store.read_bytes(journal), journal):
                if not location.startswith(move.final):
                    continue
                staged = _unfinished(store, move, journal)
                if staged is not None:
                    return View(staged + location[len(move.final) :], journal)
    return View(location)


def _buckets(plan: Any) -> list[str]:
    """Every bucket a bake of this plan may have left a journal in."""
    buckets = {t.bucket for t in plan.tables.values()}
    for step in (s for ly in plan.layers for s in ly.walk()):
        if step.kind == "export_by_key" and step.location:
            buckets.add(split_uri(step.location)[0])
    return sorted(buckets)


def _journals(store: Store, bucket: str) -> list[str]:
    """The journals in a bucket's staging folder (not the staged tables under it)."""
    staging = f"s3://{bucket}/{STAGING}/"
    if isinstance(store, LocalStore):
        folder = store.path(staging)
        if not folder.is_dir():
            return []
        names = [n for n in os.listdir(folder) if (folder / n).is_file()]
    else:
        client = store.client  # type: ignore[attr-defined]
        names = []
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{STAGING}/", Delimiter="/"
        )
        try:
            for page in pages:
                names += [o["Key"].rsplit("/", 1)[-1] for o in page.get("Contents", [])]
        except client.exceptions.NoSuchBucket:
            return []  # a bucket of the plan not made yet holds no journal
    return sorted(staging + n for n in names if n.endswith(JOURNAL_SUFFIX))


def _unfinished(store: Store, move: Move, journal: str) -> str | None:
    """The staged location of `move` when the next bake still has to publish it; None
    when it is done (the published location holds it). The same proofs as the
    roll-forward's (publish.Staging._forward), only looked at."""
    if not isinstance(store, LocalStore):
        # the marker beside the staged copy is deleted only once the copy is complete
        return move.staged if store.exists(move.staged.rstrip("/") + MARKER) else None
    final, staged = store.path(move.final), store.path(move.staged)
    if move.staged_id is not None and _identity(final) == move.staged_id:
        return None  # the published folder is the staged one: moved
    if move.staged_id is None:  # an older bakery's journal: no identities
        return move.staged if staged.is_dir() else None
    if _identity(staged) == move.staged_id:
        return move.staged
    raise PublishFailed(
        f"the unfinished publish {journal} cannot be read through: the staged copy of "
        f"{move.ref} is gone and {move.final} is not it; the next bake says what to do"
    )
