"""A local store never touches a path outside its folder, whatever the URI and whatever
symlinks were planted in it (issue 13, finding 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakery.store import LocalStore
from bakery.store_paths import OutsideStore


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "keep.txt").write_text("precious")
    return folder


@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket/../victim/keep.txt",
        "s3://bucket/a/../../../victim/keep.txt",
        "s3://../victim/keep.txt",
        "s3://bucket/./a",
        "s3://bucket/a\\..\\b",
    ],
)
def test_dot_parts_are_refused_for_every_operation(tmp_path: Path, victim: Path, uri: str):
    store = LocalStore(tmp_path / "store")
    for op in (
        lambda: store.write_bytes(uri, b"x"),
        lambda: store.delete(uri),
        lambda: store.delete_prefix(uri),
        lambda: store.read_bytes(uri),
        lambda: store.move_prefix("s3://bucket/src/", uri),
    ):
        with pytest.raises(OutsideStore, match="refusing to touch it"):
            op()
    assert (victim / "keep.txt").read_text() == "precious"


def test_a_symlink_in_the_store_does_not_lead_out(tmp_path: Path, victim: Path):
    store = LocalStore(tmp_path / "store")
    store.write_bytes("s3://bucket/data/ok.txt", b"ok")
    (tmp_path / "store" / "bucket" / "link").symlink_to(victim)
    with pytest.raises(OutsideStore, match="outside the store"):
        store.delete_prefix("s3://bucket/link/")
    with pytest.raises(OutsideStore, match="outside the store"):
        store.write_bytes("s3://bucket/link/keep.txt", b"overwritten")
    assert (victim / "keep.txt").read_text() == "precious"
    assert store.read_bytes("s3://bucket/data/ok.txt") == b"ok"


def test_a_store_reached_through_a_symlink_still_works(tmp_path: Path):
    real = tmp_path / "real-store"
    real.mkdir()
    (tmp_path / "store").symlink_to(real)
    store = LocalStore(tmp_path / "store")
    store.write_bytes("s3://bucket/a/b.txt", b"ok")
    store.move_prefix("s3://bucket/a/", "s3://bucket/c/")
    assert store.list("s3://bucket/") == ["s3://bucket/c/b.txt"]
