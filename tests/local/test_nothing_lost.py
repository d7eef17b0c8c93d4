"""A bake that is killed or fails leaves published tables and outcode files as they were;
the next bake cleans the leftovers and publishes normally."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from bakery import sample_data
from bakery.cli import app
from bakery.democracy_club.samples.ballots import ballots_csv
from bakery.engine import bake
from bakery.engine.publish import STAGING
from tests.local.conftest import REPO, export_location, read_joined, read_outcodes, snapshot

runner = CliRunner()


def _published(plan, store):
    bake(plan, ["current_elections"], store, with_upstream=True)
    return read_joined(store, plan), read_outcodes(store, plan)


def _new_ballots(plan, store, seed: int) -> None:
    """Different ballots: a bake that got through would change every output."""
    location = plan.table("current_elections.current_ballots").location
    store.write_bytes(location + "current_elections.csv", ballots_csv(150, seed))


def test_killed_during_geo_join_leaves_published_outputs_unchanged(plan, store):
    sample_data.write_sample_data(plan, store, addresses=3000, ballots=150, seed=3)
    before_joined, before_files = _published(plan, store)
    _new_ballots(plan, store, seed=99)
    before = snapshot(store.root)

    env = {**os.environ, "BAKERY_TEST_PAUSE_AT": "join_ballots_to_addresses"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from bakery.cli import main; main()", "bake",
         "current_elections", "--store", str(store.root)],
        cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 60
    seen = ""
    while time.time() < deadline:
        line = proc.stderr.readline()
        seen += line
        if "paused at current_elections.join_ballots_to_addresses" in line or not line:
            break
    assert "paused at" in seen, seen
    # the geo-join's output is staged (hidden), not published
    staged = list((store.root / "pollingstations.private.data" / STAGING).rglob("*.parquet"))
    assert staged
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)

    assert snapshot(store.root) == before  # bytes and mtimes of every published file
    assert read_joined(store, plan) == before_joined

    # the next bake removes the leftover staging and publishes the new ballots
    result = bake(plan, ["current_elections"], store)
    assert any("leftover staging" in n for n in result.notes)
    assert not list((store.root / "pollingstations.private.data" / STAGING).rglob("*"))
    assert read_joined(store, plan) != before_joined
    assert set(read_outcodes(store, plan)) == set(before_files)


FAILING_CHECK = """\
  - type: check
    id: every_address_located
    description: Every address has coordinates.
    check:
      kind: no_rows
      sql: >-
        SELECT uprn, postcode FROM {{ ref('current_ballots_joined_to_address_base') }}
        WHERE longitude IS NULL ORDER BY uprn

  - type: export_by_key
"""


def test_failed_check_leaves_published_outputs_unchanged(plan, store, project_copy, monkeypatch):
    sample_data.write_sample_data(plan, store, addresses=3000, ballots=150, seed=3)
    before_joined, _ = _published(plan, store)
    _new_ballots(plan, store, seed=99)
    before = snapshot(store.root)

    layer = project_copy / "layers" / "current_elections.yaml"
    layer.write_text(layer.read_text().replace("  - type: export_by_key\n", FAILING_CHECK))
    monkeypatch.setenv("BAKERY_PROJECT", str(project_copy))
    result = runner.invoke(app, ["bake", "current_elections", "--store", str(store.root)])
    assert result.exit_code == 1, result.output
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(
        "bakery: error: check current_elections.every_address_located failed: "
        "Every address has coordinates.: uprn="
    ), error
    assert "postcode=" in error and "Traceback" not in result.stderr
    assert snapshot(store.root) == before
    assert read_joined(store, plan) == before_joined
    assert not list((store.root / "pollingstations.private.data" / STAGING).rglob("*"))


def test_builtin_check_message_names_the_first_difference(plan, store):
    """same_uprns_as_raw fails when the raw table changes under the joined table: here a
    second raw file appears between the two layers' bakes (simulated by baking
    current_elections alone against a larger raw table)."""
    sample_data.write_sample_data(plan, store, addresses=500, ballots=20, seed=3)
    bake(plan, ["current_elections"], store, with_upstream=True)
    raw = plan.table("addressbase.addressbase_cleaned_raw").location
    store.write_bytes(raw + "extra.csv", b'999999999,"1 Extra Road",AB1 1AA,,R\n')
    before = snapshot(store.root)
    try:
        bake(plan, ["current_elections"], store)
    except Exception as exc:  # BakeError
        message = str(exc)
    else:
        raise AssertionError("the bake should fail")
    assert message.startswith(
        "check current_elections.same_uprns_as_raw failed: "
        "current_ballots_joined_to_address_base.uprn holds the same non-empty set of values as "
        "addressbase.addressbase_cleaned_raw.uprn: left_count=500, right_count=501"
    ), message
    assert snapshot(store.root) == before


def test_publish_interrupted_after_the_journal_is_rolled_forward(plan, store):
    """A kill between writing the publish journal and the renames: the next bake
    finishes the publish instead of losing the staged, fully checked tables."""
    from bakery.engine.publish import Staging

    sample_data.write_sample_data(plan, store, addresses=300, ballots=20, seed=3)
    bake(plan, ["addressbase"], store)
    table = plan.table("addressbase.addressbase_partitioned")
    crashed = Staging(store, plan, "crashed-run")
    staged = crashed.stage(table)
    store.write_bytes(staged + "first_letter=Q/part-new.parquet", b"new")
    store.write_bytes(
        f"s3://{table.bucket}/{STAGING}/crashed-run.publish.json",
        json.dumps({"moves": [[staged, table.location]]}).encode(),
    )
    notes = Staging(store, plan, "next-run").recover()
    assert any("finished publishing 1 table" in n for n in notes)
    assert store.list(table.location) == [table.location + "first_letter=Q/part-new.parquet"]
    assert not (store.root / table.bucket / STAGING).exists()


def test_a_second_bake_on_the_same_store_stops_at_once(plan, store):
    from bakery.engine import BakeError
    from bakery.engine.publish import Staging

    sample_data.write_sample_data(plan, store, addresses=300, ballots=20, seed=3)
    holder = Staging(store, plan, "holder")
    holder.acquire()
    try:
        try:
            bake(plan, ["addressbase"], store)
        except BakeError as exc:
            assert "another bake is running on store" in str(exc)
        else:
            raise AssertionError("the second bake should stop")
    finally:
        holder.release()
    assert bake(plan, ["addressbase"], store).ok


def _crashed_publish(plan, store, run: str) -> tuple[str, str]:
    """A bake killed after writing its publish journal (in the first move's bucket,
    pollingstations.private.data) for two tables staged in two buckets; the ballots
    table is staged in ee.data-cache.production, which sorts first."""
    from bakery.engine.publish import Staging

    joined = plan.table("current_elections.current_ballots_joined_to_address_base")
    ballots = plan.table("current_elections.current_ballots")
    crashed = Staging(store, plan, run)
    staged_joined, staged_ballots = crashed.stage(joined), crashed.stage(ballots)
    store.write_bytes(staged_joined + "first_letter=Q/part-new.parquet", b"joined")
    store.write_bytes(staged_ballots + "current_elections.csv", b"ballots")
    store.write_bytes(
        f"s3://{joined.bucket}/{STAGING}/{run}.publish.json",
        json.dumps(
            {"moves": [[staged_joined, joined.location], [staged_ballots, ballots.location]]}
        ).encode(),
    )
    return joined.location, ballots.location


def test_a_journal_in_one_bucket_rolls_forward_tables_staged_in_another(plan, store):
    from bakery.engine.publish import Staging

    joined, ballots = _crashed_publish(plan, store, "crashed-run")
    notes = Staging(store, plan, "next-run").recover()
    assert any("finished publishing 2 table(s)" in n for n in notes)
    assert store.list(joined) == [joined + "first_letter=Q/part-new.parquet"]
    assert store.read_bytes(ballots + "current_elections.csv") == b"ballots"
    for bucket in ("pollingstations.private.data", "ee.data-cache.production"):
        assert not (store.root / bucket / STAGING).exists()


def test_s3_publish_killed_mid_copy_is_finished_by_the_next_bake(plan, monkeypatch):
    """On S3 a move is a copy then a delete: a kill part-way through the copy must
    leave the staged copy and its marker, so the next bake copies it all again."""
    from moto import mock_aws

    from bakery.engine.publish import Staging
    from bakery.store import S3Store

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        store = S3Store("https://s3.eu-west-2.amazonaws.com")
        for bucket in ("pollingstations.private.data", "ee.data-cache.production"):
            store.client.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
            )
        table = plan.table("addressbase.addressbase_partitioned")
        store.write_bytes(table.location + "first_letter=A/old.parquet", b"old")
        crashed = Staging(store, plan, "crashed-run")
        staged = crashed.stage(table)
        for letter in "ABC":
            store.write_bytes(staged + f"first_letter={letter}/new.parquet", letter.encode())
        crashed.staged = {table.ref: staged}
        real_copy, copies = store.client.copy_object, []

        def killed_after_one(**kwargs):
            if copies:
                raise KeyboardInterrupt("killed")
            copies.append(kwargs["Key"])
            return real_copy(**kwargs)

        monkeypatch.setattr(store.client, "copy_object", killed_after_one)
        try:
            crashed.publish([table.ref])
        except KeyboardInterrupt:
            pass
        else:
            raise AssertionError("the publish should have been killed")
        monkeypatch.setattr(store.client, "copy_object", real_copy)
        Staging(store, plan, "next-run").recover()
        assert store.list(table.location) == [
            table.location + f"first_letter={letter}/new.parquet" for letter in "ABC"
        ]
        assert store.read_bytes(table.location + "first_letter=B/new.parquet") == b"B"
        assert store.list(f"s3://{table.bucket}/{STAGING}/") == []
        assert not store._all(f"s3://{table.bucket}/{STAGING}/")


# -- a fault after every filesystem operation of a publish -----------------------------
#
# The walk: count the filesystem operations of a publish (the runner's failure handling
# included), then run it again once per operation N with a fault at N: an OSError
# instead of the N-th operation, a KeyboardInterrupt right after it, or an OSError at N
# and at every operation after it (a disk that stays broken). Each time, the published
# bytes of the two tables (in two buckets) and of the export's folder (per-key files, a
# stale one the export drops, a file it does not own and keeps) must be all old or all
# new, then again after the next bake's recovery, which must leave no staging or old
# copies behind.

FS_CALLS = [("os", "replace"), ("os", "rename"), ("os", "unlink"), ("os", "remove"),
            ("os", "rmdir"), ("os", "mkdir"), ("os", "link"), ("shutil", "rmtree"),
            ("shutil", "copyfile")]  # fmt: skip


class Faults:
    """Wraps the filesystem calls a publish makes; `at` is the operation to fail."""

    def __init__(self, monkeypatch, *, at: int = 0, kind: str = "count"):
        import errno
        import pathlib
        import shutil

        self.count, self.at, self.kind, self.fired = 0, at, kind, False
        self.errno = [errno.EXDEV, errno.ENOSPC, errno.EIO][at % 3]
        modules = {"os": os, "shutil": shutil}
        for module, name in FS_CALLS:
            monkeypatch.setattr(modules[module], name, self._wrap(getattr(modules[module], name)))
        monkeypatch.setattr(pathlib.Path, "write_bytes", self._wrap(pathlib.Path.write_bytes))

    def _wrap(self, real):
        def op(*args, **kwargs):
            self.count += 1
            if self.kind == "persistent" and self.at and self.count >= self.at:
                self.fired = True
                raise OSError(self.errno, os.strerror(self.errno))
            if self.count == self.at and self.kind == "oserror":
                self.fired = True
                raise OSError(self.errno, os.strerror(self.errno))
            if self.count == self.at and self.kind == "interrupt":
                self.fired = True
                try:
                    real(*args, **kwargs)
                finally:  # the operation has run (or raised): the interrupt comes next
                    raise KeyboardInterrupt  # noqa: B012
            return real(*args, **kwargs)

        return op


def _tables(plan):
    return (
        plan.table("current_elections.current_ballots_joined_to_address_base"),
        plan.table("current_elections.current_ballots"),
    )


OLD = {"joined": {"first_letter=A/a.parquet": b"old A", "first_letter=B/b.parquet": b"old B"},
       "ballots": {"current_elections.csv": b"old ballots"},
       "outcodes": {"AB1.parquet": b"old AB1", "CD2.parquet": b"old CD2",
                    "notes/kept.txt": b"not the export's"}}  # fmt: skip
# the export writes AB1 and EF3; CD2 is stale (dropped), notes/kept.txt is kept
EXPORTED = {"AB1.parquet": b"new AB1", "EF3.parquet": b"new EF3"}
NEW = {"joined": {"first_letter=B/b.parquet": b"new B", "first_letter=C/c.parquet": b"new C"},
       "ballots": {"current_elections.csv": b"new ballots"},
       "outcodes": {**EXPORTED, "notes/kept.txt": b"not the export's"}}  # fmt: skip
NEW_FIRST = {**NEW, "outcodes": EXPORTED}  # nothing was published before


def stage_new(store, plan, run: str):
    """A Staging of run `run` holding NEW (both tables) and EXPORTED (the export), as
    the runner leaves it when a layer's steps have passed."""
    from bakery.engine.publish import Staging
    from bakery.lambdas.export_by_key import is_key_file

    staging = Staging(store, plan, run)
    for key, table in zip(("joined", "ballots"), _tables(plan), strict=True):
        location = staging.stage(table)
        for name, data in NEW[key].items():
            store.write_bytes(location + name, data)
    exported = staging.stage_export("current_elections.export", export_location(plan))
    for name, data in EXPORTED.items():
        store.write_bytes(exported + name, data)
    staging.carry_over("current_elections.export", set(EXPORTED), is_key_file)
    return staging


def _visible(store, plan) -> dict[str, dict[str, bytes]]:
    out = {}
    locations = [t.location for t in _tables(plan)] + [export_location(plan)]
    for key, location in zip(("joined", "ballots", "outcodes"), locations, strict=True):
        out[key] = {uri[len(location) :]: store.read_bytes(uri) for uri in store.list(location)}
    return out


def _no_leftovers(store) -> None:
    hidden = [
        p.relative_to(store.root).as_posix()
        for p in store.root.rglob(".*")
        if p.name != ".bakery.lock"
    ]
    assert hidden == [], hidden


def _one_publish(plan, store, run: str, mp, **faults) -> tuple[BaseException | None, Faults]:
    """Stage NEW over what is published and publish it as the runner does: on any
    exception the runner discards its staging (and reports the failure)."""

    staging = stage_new(store, plan, run)
    wrapped = Faults(mp, **faults)
    wrapped.staging, wrapped.returned = staging, False
    try:
        staging.publish([t.ref for t in _tables(plan)])
        wrapped.returned = True  # the runner notes "published" here
        staging.discard()
    except BaseException as exc:  # noqa: BLE001 - what the runner does with any failure
        # a broken disk may fail the cleanup too; the runner reports the first error
        with contextlib.suppress(OSError):
            staging.discard()
        return exc, wrapped
    return None, wrapped


def _seed(plan, store, published: bool) -> tuple[dict, dict]:
    """Publish OLD (or nothing); returns what is published and what a publish gives."""
    if not published:
        return {"joined": {}, "ballots": {}, "outcodes": {}}, NEW_FIRST
    locations = [t.location for t in _tables(plan)] + [export_location(plan)]
    for key, location in zip(("joined", "ballots", "outcodes"), locations, strict=True):
        for name, data in OLD[key].items():
            store.write_bytes(location + name, data)
    return OLD, NEW


@pytest.mark.parametrize("published_before", [True, False], ids=["replace", "first"])
def test_a_fault_after_any_filesystem_operation_of_a_publish_loses_nothing(
    plan, tmp_path, published_before
):
    from bakery.engine.publish import Staging
    from bakery.store import LocalStore

    with pytest.MonkeyPatch.context() as mp:
        store = LocalStore(tmp_path / "count")
        old, new = _seed(plan, store, published_before)
        error, counter = _one_publish(plan, store, "run", mp)
        assert error is None
        total = counter.count
    assert _visible(store, plan) == new
    assert total >= 8, total  # the journal, renames, deletes: the wrapping sees them

    checked = interrupted_after_commit = 0
    for kind in ("oserror", "interrupt", "persistent"):
        for n in range(1, total + 1):
            store = LocalStore(tmp_path / f"{kind}-{n}")
            old, new = _seed(plan, store, published_before)
            with pytest.MonkeyPatch.context() as mp:
                error, faults = _one_publish(plan, store, "run", mp, at=n, kind=kind)
            assert faults.fired, (kind, n)
            where = f"{kind} at operation {n} of {total} ({error!r})"
            after = _visible(store, plan)
            if kind != "persistent":  # a disk that stays broken may leave a half-way state
                assert after in (old, new), f"{where}: published {after}"
            # what the bake reports is what happened
            if error is None:
                assert after == new, where
            elif isinstance(error, KeyboardInterrupt) and old != new:
                reported = faults.returned or bool(faults.staging.published_when_interrupted)
                assert reported == (after == new), where
                interrupted_after_commit += bool(faults.staging.published_when_interrupted)
            elif "its published data is unchanged" in str(error):
                assert after == old, where
            # the next bake starts by rolling forward or cleaning up what this one left
            Staging(store, plan, "next").recover()
            recovered = _visible(store, plan)
            assert recovered in (old, new), f"{where}: after the next bake {recovered}"
            if kind != "persistent":
                assert recovered == after, f"{where}: the next bake changed {after}"
            _no_leftovers(store)
            checked += 1
    assert checked == 3 * total
    if published_before:  # a Ctrl-C right after the commit is reported as published
        assert interrupted_after_commit >= 1


def _hidden(root) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob(".*") if p.name != ".bakery.lock"
    )


def _fail_publish_rename(monkeypatch, plan, exc: BaseException) -> None:
    """The rename that puts the staged partitioned table in place raises `exc` (after
    the published folder was moved aside: the moment the old code lost the table)."""

    final = plan.table("addressbase.addressbase_partitioned").location
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if STAGING in str(src) and str(dst).rstrip("/").endswith(
            final.split("/", 3)[3].rstrip("/")
        ):
            raise exc
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def test_a_failed_publish_rename_keeps_the_published_table(plan, tmp_path, monkeypatch):
    import errno

    from bakery.store import LocalStore

    store = LocalStore(tmp_path / "store")
    sample_data.write_sample_data(plan, store, addresses=300, ballots=20, seed=3)
    assert runner.invoke(app, ["bake", "addressbase", "--store", str(store.root)]).exit_code == 0
    before = snapshot(store.root)

    with monkeypatch.context() as mp:
        _fail_publish_rename(mp, plan, OSError(errno.EXDEV, "Invalid cross-device link"))
        result = runner.invoke(app, ["bake", "addressbase", "--store", str(store.root)])
        as_json = runner.invoke(app, ["bake", "addressbase", "--store", str(store.root), "--json"])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert lines[-1] == (
        "bakery: error: layer addressbase: could not publish "
        "addressbase.addressbase_partitioned, addressbase.addressbase_rejects: "
        "OSError: [Errno 18] Invalid cross-device "
        "link; its published data is unchanged; fix the cause, then bake again"
    ), lines[-1]
    assert lines[-2].endswith(
        "failed: addressbase (its published data is unchanged); not started: none"
    )
    assert as_json.exit_code == 1
    summary = json.loads(as_json.stdout)
    assert summary["ok"] is False and "could not publish" in summary["error"]
    assert summary["layer_status"]["failed"] == ["addressbase"]
    assert snapshot(store.root) == before  # every published byte and mtime
    assert _hidden(store.root) == []  # nothing half-moved left behind

    again = runner.invoke(app, ["bake", "addressbase", "--store", str(store.root)])
    assert again.exit_code == 0, again.output
    assert snapshot(store.root) != before
    assert _hidden(store.root) == []


def test_ctrl_c_during_publish_keeps_the_published_table(plan, tmp_path, monkeypatch):
    from bakery.store import LocalStore

    store = LocalStore(tmp_path / "store")
    sample_data.write_sample_data(plan, store, addresses=300, ballots=20, seed=3)
    bake(plan, ["addressbase"], store)
    before = snapshot(store.root)
    with monkeypatch.context() as mp:
        _fail_publish_rename(mp, plan, KeyboardInterrupt())
        result = runner.invoke(app, ["bake", "addressbase", "--store", str(store.root)])
    assert result.exit_code != 0
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("interrupted after"))
    assert line.endswith(
        "interrupted: addressbase (its published data is unchanged); not started: none"
    )
    assert snapshot(store.root) == before
    assert bake(plan, ["addressbase"], store).ok
    assert _hidden(store.root) == []


def _damage_one_file(store, location: str) -> str:
    uri = store.list(location)[0]
    path = store.path(uri)
    path.write_bytes(path.read_bytes()[:50])  # truncated: no Parquet footer
    return uri


def test_a_damaged_published_file_fails_only_the_steps_that_read_it(plan, tmp_path):
    from bakery.store import LocalStore

    store = LocalStore(tmp_path / "store")
    sample_data.write_sample_data(plan, store, addresses=300, ballots=20, seed=3)
    bake(plan, ["current_elections"], store, with_upstream=True)
    joined = plan.table("current_elections.current_ballots_joined_to_address_base")
    partitioned = plan.table("addressbase.addressbase_partitioned")

    # addressbase does not read the joined table: a damaged file there does not stop it
    damaged_joined = _damage_one_file(store, joined.location)
    assert bake(plan, ["addressbase"], store).ok

    bad = _damage_one_file(store, partitioned.location)
    args = ["bake", "current_elections", "--store", str(store.root)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(
        "bakery: error: step current_elections.join_ballots_to_addresses failed: "
    ), lines[-1]
    assert f"table addressbase.addressbase_partitioned: file {bad} is damaged (" in lines[
        -1
    ] and lines[-1].endswith("; bake layer addressbase to rewrite it"), lines[-1]
    assert lines[-2].endswith(
        "failed: current_elections (its published data is unchanged); not started: none"
    ), lines[-2]
    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 1
    out = json.loads(as_json.stdout)
    assert out["ok"] is False and f"file {bad} is damaged" in out["error"]

    # the bake that rewrites addressbase repairs it; current_elections' own damaged file is
    # refused by its publish guard (which would otherwise compare with nothing) until the
    # file the message names is deleted
    assert runner.invoke(app, ["bake", "addressbase", "--store", str(store.root)]).exit_code == 0
    guarded = runner.invoke(app, args)
    assert guarded.exit_code == 1 and damaged_joined in guarded.stderr, guarded.stderr
    store.path(damaged_joined).unlink()
    assert runner.invoke(app, args).exit_code == 0
    read_joined(store, plan)  # every file reads again
    assert bad not in store.list(partitioned.location)


def test_ctrl_c_right_after_the_commit_is_reported_as_published(plan, tmp_path, monkeypatch):
    """The journal deleted (the commit), then Ctrl-C: the tables are new, so the line
    must not say the published data is unchanged."""
    from bakery.engine.publish import STAGING
    from bakery.store import LocalStore

    store = LocalStore(tmp_path / "store")
    sample_data.write_sample_data(plan, store, addresses=300, ballots=20, seed=3)
    bake(plan, ["addressbase"], store)
    before = snapshot(store.root)
    real = LocalStore.delete

    def delete_then_interrupt(self, uri):
        real(self, uri)
        if STAGING in uri and uri.endswith(".publish.json"):
            raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(LocalStore, "delete", delete_then_interrupt)
        result = runner.invoke(app, ["bake", "addressbase", "--store", str(store.root), "--json"])
    assert result.exit_code != 0
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("interrupted after"))
    assert line.endswith(
        "interrupted: addressbase (it was published, then failed); not started: none"
    ), line
    assert json.loads(result.stdout)["layer_status"]["failed_after_publishing"] == ["addressbase"]
    assert snapshot(store.root) != before  # it was published
