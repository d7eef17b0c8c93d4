"""What a simulation publishes into the store: a layer's outputs, once its state machine
has succeeded, through the protocol a bake publishes with (bakery.engine.publish).

The tables a layer writes and the folders its exports write are staged from moto into
the store's staging, beside the published ones, then published together under a
journal: a layer that failed publishes nothing, a failure or Ctrl-C (or SIGTERM) while
publishing puts everything back, and a kill is rolled forward by the next bake or
simulate. So every published table and export folder is entirely old or entirely new,
as after a bake (the fault walk: tests/aws/test_simulate_nothing_lost.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from bakery.engine.damaged import one_line
from bakery.engine.publish import PublishFailed, Staging
from bakery.lambdas.s3uri import split as split_uri
from bakery.simulate.s3 import visible
from bakery.store import LocalStore

if TYPE_CHECKING:
    from bakery.plan import LayerPlan, Plan, TablePlan
    from bakery.simulate.run import LayerRun, SimulateResult


def publish_layer(
    s3: Any,
    staging: Staging,
    run: LayerRun,
    result: SimulateResult,
    emit: Callable[[dict[str, Any]], None],
) -> bool:
    """Publish into the store what the layer's state machine (which succeeded) wrote in
    moto; False, with `result.error`, when that failed (the store says how it is)."""
    layer = staging.plan.layer(run.layer)

    def note(text: str) -> None:
        emit({"type": "Note", "layer": layer.name, "text": text})

    try:
        refs = stage_layer(s3, staging, staging.plan, layer)
        run.published = staging.publish(refs)
    except PublishFailed as exc:
        result.error = f"layer {layer.name}: {exc}"
        result.unfinished_publish = staging.pending
        return False
    except KeyboardInterrupt:  # the report must not say "unchanged" when it is not
        if staging.published_when_interrupted:
            run.published = list(staging.published_when_interrupted)
            note(f"published {', '.join(run.published)}")
        elif staging.pending is not None:
            result.unfinished_publish = staging.pending
            note(f"{HALF_WAY} (journal {staging.pending})")
        raise
    except Exception as exc:  # noqa: BLE001 - S3 (botocore) or OS errors while staging
        result.error = (
            f"layer {layer.name}: could not copy its outputs from the simulated S3 into the "
            f"store: {one_line(exc)}; its published data is unchanged"
        )
        return False
    if run.published:
        note(f"published {', '.join(run.published)}")
    for text in staging.finish():
        result.notes.append(text)
        note(text)
    return True


# said when an interrupt left a publish half done, as a bake says it
HALF_WAY = "publishing stopped half-way; the next bake or simulate finishes it"


def discard(staging: Staging, result: SimulateResult) -> None:
    """Drop this run's staging; failing to loses nothing (the next run removes it)."""
    try:
        staging.discard()
    except Exception as exc:  # noqa: BLE001 - OS errors
        result.notes.append(
            f"could not remove this run's staging ({one_line(exc)}); the next bake does"
        )


def outputs(plan: Plan, layer: LayerPlan) -> tuple[list[TablePlan], dict[str, str]]:
    """What a layer's state machine publishes: the tables its steps write, and the folder
    each export_by_key step writes by its qualified id (what `bake` stages and publishes)."""
    tables = [t for t in layer.tables if not t.external]
    exports = {
        s.qualified_id: s.location for s in layer.walk() if s.kind == "export_by_key" and s.location
    }
    return tables, exports


def stage_layer(s3: Any, staging: Staging, plan: Plan, layer: LayerPlan) -> list[str]:
    """Stage, in the store's staging (bakery.engine.publish), what moto holds at every
    location `layer` publishes, so that `staging.publish` puts it in place as a bake's
    own output: the store is never written file by file. Returns the table refs."""
    tables, exports = outputs(plan, layer)
    for table in tables:
        _copy_down(s3, staging, table.location, staging.stage(table))
    for step_id, location in exports.items():
        _copy_down(s3, staging, location, staging.stage_export(step_id, location))
    return [t.ref for t in tables]


def _copy_down(s3: Any, staging: Staging, source: str, staged: str) -> int:
    """Fill the staged folder with moto's objects under `source`; a file the store
    already publishes with the same bytes is linked instead of downloaded. Returns how
    many files were downloaded."""
    store = staging.store
    assert isinstance(store, LocalStore)  # simulate's store is a folder
    bucket, prefix = split_uri(source)
    downloaded = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(prefix) :]
            # a "folder" object holds nothing; dot-names are the store's own (staging,
            # backups, temporary files) and never come from a run
            if not rel or rel.endswith("/") or not visible(PurePosixPath(rel)):
                continue
            target = store.path(staged + rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            published = store.path(source + rel)
            if published.is_file() and _same(published, obj):
                try:
                    os.link(published, target)
                    continue
                except OSError:  # a filesystem without hard links: download it
                    pass
            # one GET, streamed, in this thread (boto3's download_file would use a pool
            # of threads, where a Ctrl-C does not land)
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"]
            with open(target, "wb") as out:
                shutil.copyfileobj(body, out, 1 << 20)
            downloaded += 1
    return downloaded


def _same(path: Path, obj: dict[str, Any]) -> bool:
    """The local file holds the object (size, then MD5 against a single-part ETag)."""
    etag = str(obj.get("ETag", "")).strip('"')
    if path.stat().st_size != obj.get("Size") or "-" in etag:
        return False
    return hashlib.md5(path.read_bytes()).hexdigest() == etag
