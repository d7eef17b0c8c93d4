"""Staging and publishing: nothing published is touched until a layer has succeeded.

While a layer bakes, every table it writes lives at a staged location beside the real
one, `s3://BUCKET/.bakery-staging/<run>/t/<prefix>` (hidden: Athena and the engine
ignore names starting with '.'); `purge_prefix` means "the staged table starts empty".
When the layer's checks have passed, its staged tables replace the published ones
(locally: two renames per table, no copying), guided by a journal so that a bake killed
half-way through publishing is rolled forward at the next bake. A bake killed or failed
before that leaves every published table as it was; its staging is removed by the next
bake, which also takes a lock so two bakes never share a store.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from bakery.plan import Plan, TablePlan
from bakery.store import LocalStore, Store, split_uri

STAGING = ".bakery-staging"
MARKER = ".staged"


class StoreBusy(Exception):
    pass


class Staging:
    def __init__(self, store: Store, plan: Plan, run_id: str):
        self.store = store
        self.plan = plan
        self.run_id = run_id
        self.staged: dict[str, str] = {}  # table ref -> staged location
        # refs whose read location or files changed here (staged, emptied, published,
        # discarded): the engine refreshes only these tables' views
        self.changed: set[str] = set()
        self._lock: Any = None

    # -- locations -------------------------------------------------------

    def staged_location(self, table: TablePlan) -> str:
        return f"s3://{table.bucket}/{STAGING}/{self.run_id}/t/{table.prefix}"

    def read_location(self, table: TablePlan) -> str:
        return self.staged.get(table.ref, table.location)

    def _journal(self, bucket: str) -> str:
        return f"s3://{bucket}/{STAGING}/{self.run_id}.publish.json"

    # -- staging ---------------------------------------------------------

    def stage(self, table: TablePlan, *, empty: bool = True) -> str:
        """Start (or keep) a staged copy of `table`; a new staged table is empty."""
        if table.ref in self.staged:
            if empty:
                self.store.delete_prefix(self.staged[table.ref])
                self._mark(self.staged[table.ref])
                self.changed.add(table.ref)
            return self.staged[table.ref]
        location = self.staged_location(table)
        self.store.delete_prefix(location)
        self._mark(location)
        self.staged[table.ref] = location
        self.changed.add(table.ref)
        return location

    @staticmethod
    def _marker(location: str) -> str:
        """Beside the staged folder, not in it: it is never copied into a published
        table, and deleting the staged folder's objects leaves it in place."""
        return location.rstrip("/") + MARKER

    def _mark(self, location: str) -> None:
        if isinstance(self.store, LocalStore):
            self.store.path(location).mkdir(parents=True, exist_ok=True)
        self.store.write_bytes(self._marker(location), b"")

    def _staged_exists(self, location: str) -> bool:
        if isinstance(self.store, LocalStore):
            return self.store.path(location).is_dir()
        return self.store.exists(self._marker(location))

    def publish(self, refs: list[str]) -> list[str]:
        """Replace each published table by its staged copy; returns the refs published."""
        moves = [(self.staged[r], self.plan.table(r).location) for r in refs if r in self.staged]
        if not moves:
            return []
        bucket = split_uri(moves[0][1])[0]
        journal = self._journal(bucket)
        self.store.write_bytes(journal, json.dumps({"moves": moves}).encode())
        for staged, final in moves:
            self._move(staged, final)
        self.store.delete(journal)
        for r in refs:
            self.staged.pop(r, None)
        self.changed.update(refs)
        return list(refs)

    def _move(self, staged: str, final: str) -> None:
        """Idempotent, so a journal can be replayed after a kill at any point.

        Locally the staged folder replaces the published one by renames: while it
        exists the move is not done. On S3 the copy is not atomic: the marker stays
        until every object is copied (a kill mid-copy is replayed from the intact
        staged copy), and only then are the marker and the staged objects deleted.
        """
        if not self._staged_exists(staged):
            return  # moved already (roll-forward after a kill)
        if isinstance(self.store, LocalStore):
            self.store.move_prefix(staged, final)
            self.store.delete(self._marker(staged))
            return
        self.store.copy_prefix(staged, final)  # type: ignore[attr-defined]
        self.store.delete(self._marker(staged))
        self.store.delete_prefix(staged)

    # -- lock and recovery -----------------------------------------------

    def acquire(self) -> None:
        """Hold the store's lock for this bake (local stores; S3 has no lock here)."""
        if not isinstance(self.store, LocalStore):
            return
        import fcntl

        self.store.root.mkdir(parents=True, exist_ok=True)
        handle = open(self.store.root / ".bakery.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StoreBusy(
                f"another bake is running on store {self.store.root}; wait for it to finish"
            ) from None
        self._lock = handle

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def recover(self) -> list[str]:
        """Finish publishes a killed bake started, then drop every leftover staging.

        A journal lives in one bucket but may move tables staged in others: every
        journal of every bucket is rolled forward before any staging is deleted."""
        notes: list[str] = []
        buckets = sorted({t.bucket for t in self.plan.tables.values()})
        leftovers: dict[str, list[str]] = {}
        for bucket in buckets:
            staging = f"s3://{bucket}/{STAGING}/"
            leftovers[bucket] = self._all_files(staging)
        for bucket in buckets:
            staging = f"s3://{bucket}/{STAGING}/"
            for uri in leftovers[bucket]:
                rel = uri[len(staging) :]
                if "/" in rel or not rel.endswith(".publish.json"):
                    continue
                moves = json.loads(self.store.read_bytes(uri))["moves"]
                for staged, final in moves:
                    self._move(staged, final)
                self.store.delete(uri)
                notes.append(f"finished publishing {len(moves)} table(s) of an interrupted bake")
        for bucket in buckets:
            staging = f"s3://{bucket}/{STAGING}/"
            if leftovers[bucket] or self._has_dir(staging):
                self.store.delete_prefix(staging)
                notes.append(f"removed leftover staging in s3://{bucket}/{STAGING}/")
        if isinstance(self.store, LocalStore):
            for table in self.plan.tables.values():
                folder = self.store.path(table.location).parent
                name = Path(table.prefix.rstrip("/")).name
                for old in folder.glob(f".{name}.old-*"):
                    shutil.rmtree(old, ignore_errors=True)
            for step in (s for ly in self.plan.layers for s in ly.walk()):
                if step.kind == "export_by_key" and step.location:
                    folder = self.store.path(step.location)
                    for tmp in folder.glob(".*.tmp-*") if folder.is_dir() else []:
                        tmp.unlink(missing_ok=True)
        return notes

    def _all_files(self, prefix: str) -> list[str]:
        if isinstance(self.store, LocalStore):
            base = self.store.path(prefix)
            if not base.is_dir():
                return []
            return [
                f"s3://{Path(d).relative_to(self.store.root).as_posix()}/{f}"
                for d, _, names in os.walk(base)
                for f in names
            ]
        client = self.store.client  # type: ignore[attr-defined]
        bucket, key = split_uri(prefix)
        out = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            out.extend(f"s3://{bucket}/{o['Key']}" for o in page.get("Contents", []))
        return out

    def _has_dir(self, prefix: str) -> bool:
        return isinstance(self.store, LocalStore) and self.store.path(prefix).is_dir()

    def discard(self) -> None:
        """Drop this run's staging (after a failure, or what is left after success)."""
        for bucket in sorted({t.bucket for t in self.plan.tables.values()}):
            self.store.delete_prefix(f"s3://{bucket}/{STAGING}/{self.run_id}/")
            if isinstance(self.store, LocalStore):
                folder = self.store.path(f"s3://{bucket}/{STAGING}/")
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
        self.changed.update(self.staged)
        self.staged.clear()
