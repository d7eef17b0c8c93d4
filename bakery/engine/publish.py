"""Staging and publishing: nothing published is touched until a layer has succeeded.

While a layer bakes, every table it writes lives at a staged location beside the real
one, `s3://BUCKET/.bakery-staging/<run>/t/<prefix>` (hidden: Athena and the engine
ignore names starting with '.'); `purge_prefix` means "the staged table starts empty".
When the layer's checks have passed, its staged tables replace the published ones
(locally: two renames per table, no copying), guided by a journal so that a bake killed
half-way through publishing is rolled forward at the next bake. An `export_by_key` step
writes its files into a staged folder too (`.../<run>/e/<destination prefix>`), which
the same journal publishes with the tables. A bake killed or failed before that leaves
every published table and exported file as it was; its staging is removed by the next
bake, which also takes a lock so two bakes never share a store.

Over the ~400-line guide because the journal, its recovery and both stores' publish
steps must agree on one record format; the split into a store-agnostic protocol with a
local and an S3 publisher is issue 20 item 4, not done yet.

Over the ~400-line guide on purpose: staging, the journal, its roll-forward and the
recovery of an interrupted bake are one protocol whose invariant (nothing the journal
references is deleted before the roll-forward completes) is checked by reading it in
one place, and by the fault walks in tests/local/test_nothing_lost*.py.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bakery.errors import BakeryError
from bakery.plan import Plan, TablePlan
from bakery.store import LocalStore, Store, split_uri

STAGING = ".bakery-staging"
MARKER = ".staged"


class StoreBusy(BakeryError):
    pass


class PublishFailed(BakeryError):
    """Publishing could not complete; the message is one line saying what became of the
    published data and what to do."""


@dataclass
class Move:
    """One table of a publish, as the journal records it."""

    ref: str
    staged: str
    final: str
    backup: str | None = None  # local: where the replaced folder waits until the commit
    staged_id: list[int] | None = None  # local: (device, inode) of the staged folder
    old_id: list[int] | None = None  # local: (device, inode) of the replaced folder


def _identity(path: Path) -> list[int] | None:
    """(device, inode): a rename keeps it, so it proves which folder is where."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return [st.st_dev, st.st_ino]


def _sizes(store: Store, prefix: str) -> dict[str, int]:
    """Every object under prefix (hidden ones included) -> its size."""
    bucket, key = split_uri(prefix)
    out: dict[str, int] = {}
    paginator = store.client.get_paginator("list_objects_v2")  # type: ignore[attr-defined]
    for page in paginator.paginate(Bucket=bucket, Prefix=key):
        for obj in page.get("Contents", []):
            out[obj["Key"][len(key) :]] = obj["Size"]
    return out


def _read_journal(data: bytes, uri: str) -> list[Move]:
    try:
        entries = json.loads(data)["moves"]
        moves = []
        for entry in entries:
            if isinstance(entry, list):  # written by an older bakery: [staged, final]
                moves.append(Move(ref=entry[1], staged=entry[0], final=entry[1]))
            else:
                moves.append(Move(**entry))
        return moves
    except (ValueError, KeyError, TypeError, IndexError):
        raise PublishFailed(
            f"the publish journal {uri} is damaged, so an interrupted publish cannot be "
            "finished; nothing was deleted: check the tables it names by hand, then delete it"
        ) from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _publish_message(refs: list[str], exc: BaseException, undone: bool | None, journal: str) -> str:
    what = exc if isinstance(exc, PublishFailed) else _one_line(exc)
    if undone:
        after = "its published data is unchanged; fix the cause, then bake again"
    elif undone is None:
        after = (
            f"the store did not say whether publishing started; if it did, the next bake "
            f"finishes it (journal {journal}); fix the cause, then bake again"
        )
    else:
        after = (
            f"publishing is half done and the next bake finishes it (journal {journal}); "
            "fix the cause, then bake again"
        )
    return f"could not publish {', '.join(refs)}: {what}; {after}"


class Staging:
    def __init__(self, store: Store, plan: Plan, run_id: str):
        self.store = store
        self.plan = plan
        self.run_id = run_id
        self.staged: dict[str, str] = {}  # table ref -> staged location
        # export step (qualified id) -> (staged folder, published destination)
        self.exports: dict[str, tuple[str, str]] = {}
        # refs whose read location or files changed here (staged, emptied, published,
        # discarded): the engine refreshes only these tables' views
        self.changed: set[str] = set()
        self._lock: Any = None
        self.pending: str | None = None  # a journal written and not yet resolved
        self.tidy: list[Move] = []  # committed moves whose old copies are still there
        self.notes: list[str] = []  # for the bake's report, handed over by finish()
        # refs a publish had committed when a Ctrl-C stopped it: published, not unchanged
        self.published_when_interrupted: list[str] = []

    # -- locations -------------------------------------------------------

    def staged_location(self, table: TablePlan) -> str:
        return f"s3://{table.bucket}/{STAGING}/{self.run_id}/t/{table.prefix}"

    def read_location(self, table: TablePlan) -> str:
        return self.staged.get(table.ref, table.location)

    def _buckets(self) -> list[str]:
        """Every bucket a bake of this plan stages in: its tables' and exports'."""
        buckets = {t.bucket for t in self.plan.tables.values()}
        for step in (s for ly in self.plan.layers for s in ly.walk()):
            if step.kind == "export_by_key" and step.location:
                buckets.add(split_uri(step.location)[0])
        return sorted(buckets)

    def _final(self, ref: str) -> str:
        if ref in self.exports:
            return self.exports[ref][1]
        return self.plan.table(ref).location

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

    def stage_export(self, step_id: str, destination: str) -> str:
        """An empty staged folder for the files of export step `step_id`, published with
        the layer's tables (see `carry_over` for the files the export does not write)."""
        bucket, key = split_uri(destination)
        location = f"s3://{bucket}/{STAGING}/{self.run_id}/e/{key}"
        self.store.delete_prefix(location)
        self._mark(location)
        self.exports[step_id] = (location, destination)
        return location

    def carry_over(self, step_id: str, written: set[str], stale: Any) -> int:
        """Complete a staged export: every published file under the destination that the
        export did not write is kept (linked locally, copied on S3) unless `stale(name)`
        says the export deletes it. Returns how many files it drops."""
        staged, destination = self.exports[step_id]
        dropped = 0
        for uri in self.store.list(destination):
            name = uri[len(destination) :]
            if name in written:
                continue
            if stale(name):
                dropped += 1
                continue
            if isinstance(self.store, LocalStore):
                target = self.store.path(staged + name)
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(self.store.path(uri), target)
                except OSError:  # a filesystem without hard links
                    shutil.copyfile(self.store.path(uri), target)
            else:
                sb, sk = split_uri(uri)
                db, dk = split_uri(staged + name)
                self.store.client.copy_object(  # type: ignore[attr-defined]
                    Bucket=db, Key=dk, CopySource={"Bucket": sb, "Key": sk}
                )
        return dropped

    @staticmethod
    def _marker(location: str) -> str:
        """Beside the staged folder, not in it: it is never copied into a published
        table, and deleting the staged folder's objects leaves it in place."""
        return location.rstrip("/") + MARKER

    def _mark(self, location: str) -> None:
        if isinstance(self.store, LocalStore):
            self.store.path(location).mkdir(parents=True, exist_ok=True)
        else:
            self.store.write_bytes(self._marker(location), b"")

    def publish(self, refs: list[str]) -> list[str]:
        """Replace each published table, and the destination of every staged export, by
        its staged copy; returns the refs (and export step ids) published.

        The journal is the only truth: it is written before the first rename and deleted
        once every table is in place (the commit). Nothing it references is deleted
        before then. When anything fails or is interrupted before the commit, the
        tables are put back as they were (locally) and the journal deleted; when even
        that fails, the journal stays and the next bake finishes the publish. The old
        copies are deleted only after the commit.
        """
        refs = [r for r in refs if r in self.staged] + list(self.exports)
        if not refs:
            return []
        try:
            self._check_lock()
            moves = [self._plan_move(r) for r in refs]
        except PublishFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - nothing is written yet
            raise PublishFailed(_publish_message(refs, exc, True, "")) from exc
        journal = self._journal(split_uri(moves[0].final)[0])
        self.pending = journal
        try:
            self.store.write_bytes(
                journal, json.dumps({"moves": [asdict(m) for m in moves]}).encode()
            )
            for move in moves:
                self._forward(move)
            self.store.delete(journal)  # the commit
        except BaseException as exc:
            if isinstance(exc, Exception) and self._second_try(journal, moves):
                self.notes.append(f"publishing hit {_one_line(exc)}; finished it on a second try")
            else:
                undone = self._undo(journal, moves)
                if isinstance(exc, Exception):
                    raise PublishFailed(_publish_message(refs, exc, undone, journal)) from exc
                if undone and self._all_moved(moves):  # interrupted after the commit
                    self.published_when_interrupted = list(refs)
                raise
        self.pending = None
        for r in refs:
            if self.exports.pop(r, None) is None:
                self.staged.pop(r, None)
                self.changed.add(r)
        self.tidy = moves
        return list(refs)

    def _all_moved(self, moves: list[Move]) -> bool:
        """Whether every move is done (the journal is gone: the commit, not a publish
        that never started). False when the store cannot tell."""
        try:
            if isinstance(self.store, LocalStore):
                return all(_identity(self.store.path(m.final)) == m.staged_id for m in moves)
            return not any(self.store.exists(self._marker(m.staged)) for m in moves)
        except Exception:  # noqa: BLE001
            return False

    def _second_try(self, journal: str, moves: list[Move]) -> bool:
        """On S3, after a failed call part-way through the copies: roll the journal
        forward once more (each move is idempotent and verified), so one failed call
        does not leave readers with old and new objects side by side until the next
        bake. True when the publish is now complete and committed."""
        if isinstance(self.store, LocalStore):
            return False  # locally the tables are put back instead (_undo)
        try:
            if not self.store.exists(journal):
                return False  # not written: nothing was copied
            for move in moves:
                self._forward(move)
            self.store.delete(journal)
        except Exception:  # noqa: BLE001 - the journal stays; the next bake rolls forward
            return False
        return True

    def finish(self) -> list[str]:
        """After a commit: delete the old copies and markers. Failing here loses nothing
        (the next bake deletes what is left), so OS errors become notes."""
        notes: list[str] = self.notes
        self.notes = []
        moves, self.tidy = self.tidy, []
        try:
            self._tidy(moves)
        except OSError as exc:
            notes.append(
                f"could not delete the replaced copies ({_one_line(exc)}); the next bake does"
            )
        return notes

    def _plan_move(self, ref: str) -> Move:
        staged = self.exports[ref][0] if ref in self.exports else self.staged[ref]
        final = self._final(ref)
        if not isinstance(self.store, LocalStore):
            if not self.store.exists(self._marker(staged)):
                raise PublishFailed(
                    f"the staged copy of {ref} at {staged} is gone (did another bake on this "
                    "store remove it?); nothing was published; bake again"
                )
            return Move(ref, staged, final)
        target = self.store.path(final)
        backup = target.with_name(f".{target.name}.old-{self.run_id}")
        return Move(
            ref,
            staged,
            final,
            backup=f"s3://{backup.relative_to(self.store.root).as_posix()}",
            staged_id=_identity(self.store.path(staged)),
            old_id=_identity(target),
        )

    def _forward(self, move: Move) -> bool:
        """Do what is left of one move; True when it had anything left to do.

        Idempotent, so a journal can be replayed after a kill at any point. Locally the
        journal holds the identity (device, inode) of the staged folder, which a rename
        keeps: the move is done when the published folder *is* the staged one, never
        merely because the staged folder is missing. On S3 (no rename) the staged
        objects are copied over the published ones; the marker beside the staged copy
        is deleted only once every object is copied and checked, so its absence proves
        the copy complete.
        """
        if not isinstance(self.store, LocalStore):
            if not self.store.exists(self._marker(move.staged)):
                return False
            self.store.copy_prefix(move.staged, move.final)  # type: ignore[attr-defined]
            self._verify_copy(move)
            self.store.delete(self._marker(move.staged))
            self.store.delete_prefix(move.staged)
            return True
        final, staged = self.store.path(move.final), self.store.path(move.staged)
        if move.staged_id is not None and _identity(final) == move.staged_id:
            return False
        if move.staged_id is None:  # a journal from an older bakery: no identities
            if not staged.is_dir():
                return False
            backup = final.with_name(f".{final.name}.old-{self.run_id}")
            move.backup = f"s3://{backup.relative_to(self.store.root).as_posix()}"
            move.old_id = _identity(final)
        elif _identity(staged) != move.staged_id:
            raise PublishFailed(
                f"cannot finish publishing {move.ref}: its staged copy {staged} is gone and "
                f"{final} is not it; nothing was deleted (the replaced copy, if any, is at "
                f"{move.backup}); restore {final} by hand, then delete the journal"
            )
        final.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(final):
            if move.backup is None or _identity(final) != move.old_id:
                raise PublishFailed(
                    f"cannot publish {move.ref}: {final} changed while it was being "
                    "replaced (another program writing the store?); nothing was deleted"
                )
            os.replace(final, self.store.path(move.backup))
        os.replace(staged, final)
        return True

    def _verify_copy(self, move: Move) -> None:
        """What the published prefix holds is what was staged, object for object."""
        staged = _sizes(self.store, move.staged)
        published = _sizes(self.store, move.final)
        if staged != published:
            missing = sorted(set(staged) - set(published))[:3]
            extra = sorted(set(published) - set(staged))[:3]
            raise PublishFailed(
                f"publishing {move.ref} to {move.final} did not take: the published objects "
                f"differ from the staged ones (missing {missing or 'none'}, unexpected "
                f"{extra or 'none'}); bake again"
            )

    def _undo(self, journal: str, moves: list[Move]) -> bool | None:
        """After a failure before the commit: put every table back as it was and delete
        the journal. True when the published data is as before; False when the journal
        stays (S3, or undoing failed too) for the next bake to roll forward; None when
        the store cannot say whether the journal was written."""
        try:
            written = self.store.exists(journal)
        except Exception:  # noqa: BLE001 - e.g. S3 failing: the next bake looks again
            return None
        try:
            if not written:
                # never written (nothing was moved), or deleted: the commit happened
                self.pending = None
                return True
            if not isinstance(self.store, LocalStore):
                return False
            for move in reversed(moves):
                final = self.store.path(move.final)
                if _identity(final) == move.staged_id:
                    staged = self.store.path(move.staged)
                    staged.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(final, staged)
                if move.old_id is None or move.backup is None:
                    continue  # there was nothing published to put back
                backup = self.store.path(move.backup)
                if not os.path.lexists(final) and _identity(backup) == move.old_id:
                    os.replace(backup, final)
            self.store.delete(journal)
        except Exception:  # noqa: BLE001 - the journal stays; the next bake rolls forward
            return False
        self.pending = None
        return True

    def _tidy(self, moves: list[Move]) -> None:
        if not isinstance(self.store, LocalStore):
            return  # S3 moves leave no old copy behind
        for move in moves:
            if move.backup is not None:
                backup = self.store.path(move.backup)
                if os.path.lexists(backup):
                    shutil.rmtree(backup)

    # -- lock and recovery -----------------------------------------------

    def acquire(self) -> None:
        """Hold the store's lock for this bake: a file lock on a local store, a
        conditional-write lock object on S3 (bakery.engine.s3lock)."""
        if not isinstance(self.store, LocalStore):
            from bakery.engine.s3lock import LockBusy, S3Lock

            bucket = sorted({t.bucket for t in self.plan.tables.values()})[0]
            lock = S3Lock(self.store.client, bucket, self.run_id)  # type: ignore[attr-defined]
            try:
                lock.acquire()
            except LockBusy as exc:
                raise StoreBusy(f"S3 store {self.store.description} is busy: {exc}") from None
            self._lock = lock
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
            if hasattr(self._lock, "release"):
                self._lock.release()
            else:
                self._lock.close()
            self._lock = None

    def _check_lock(self) -> None:
        """On S3, publish only while this bake still holds the store's lock."""
        if self._lock is None or not hasattr(self._lock, "check"):
            return
        from bakery.engine.s3lock import LockLost

        try:
            self._lock.check()
        except LockLost as exc:
            raise PublishFailed(
                f"this bake lost its lock on the store ({exc}), so another bake may be "
                "using it; nothing was published; bake again"
            ) from None

    def recover(self) -> list[str]:
        """Finish publishes a killed bake started, then drop every leftover staging.

        A journal lives in one bucket but may move tables staged in others: every
        journal of every bucket is rolled forward before any staging is deleted."""
        notes: list[str] = []
        buckets = self._buckets()
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
                moves = _read_journal(self.store.read_bytes(uri), uri)
                for move in moves:
                    self._forward(move)
                self.store.delete(uri)
                self._tidy(moves)
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
                    for old in folder.parent.glob(f".{folder.name}.old-*"):
                        shutil.rmtree(old, ignore_errors=True)
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
        out: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            out.extend(f"s3://{bucket}/{o['Key']}" for o in page.get("Contents", []))
        return out

    def _has_dir(self, prefix: str) -> bool:
        return isinstance(self.store, LocalStore) and self.store.path(prefix).is_dir()

    def discard(self) -> None:
        """Drop this run's staging (after a failure, or what is left after success).

        Never while a publish journal of this run still exists: the staged copies it
        points to are then the only complete new data, and the next bake rolls the
        journal forward."""
        if self.pending is not None and self.store.exists(self.pending):
            return
        self.pending = None
        for bucket in self._buckets():
            self.store.delete_prefix(f"s3://{bucket}/{STAGING}/{self.run_id}/")
            if isinstance(self.store, LocalStore):
                folder = self.store.path(f"s3://{bucket}/{STAGING}/")
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
        self.changed.update(self.staged)
        self.staged.clear()
        self.exports.clear()
