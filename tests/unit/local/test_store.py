from __future__ import annotations

import json
from pathlib import Path

import pytest

from workflow.errors import WorkflowError
from workflow.local.store import LocalStore, ObjectExistsError, StoreError, parse_s3_uri


def test_uri_and_path_round_trip(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    path = store.path("s3://bucket/a/b.txt")
    assert path == tmp_path.resolve() / "s3" / "bucket" / "a" / "b.txt"
    assert store.uri(path) == "s3://bucket/a/b.txt"


@pytest.mark.parametrize(
    "bad", ["bucket/key", "s3://", "s3:///key", "s3://b/../x", "s3://b/a/./c", 3]
)
def test_bad_uris_are_rejected_with_the_value(bad: object) -> None:
    with pytest.raises(StoreError, match="s3://") as info:
        parse_s3_uri(bad)  # type: ignore[arg-type]
    assert isinstance(info.value, WorkflowError)


def test_put_refuses_to_overwrite(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes("s3://b/k.txt", b"one")
    with pytest.raises(ObjectExistsError, match=r"s3://b/k\.txt exists already"):
        store.put_bytes("s3://b/k.txt", b"two")
    assert store.get_bytes("s3://b/k.txt") == b"one"
    source = tmp_path / "src.bin"
    source.write_bytes(b"x")
    with pytest.raises(ObjectExistsError):
        store.put_file("s3://b/k.txt", source)
    # no temporary files left behind
    assert [p.name for p in store.path("s3://b/").iterdir()] == ["k.txt"]


def test_get_missing_object_names_it(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no object at s3://b/missing"):
        LocalStore(tmp_path).get_bytes("s3://b/missing")


def test_list_uses_s3_prefix_semantics(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for key in ["data/train/1.png", "data/train/sub/2.png", "data/tr.json", "data/test/3.png"]:
        store.put_bytes(f"s3://b/{key}", b"x")
    assert store.list("s3://b/data/train/") == [
        "s3://b/data/train/1.png",
        "s3://b/data/train/sub/2.png",
    ]
    assert store.list("s3://b/data/tr") == [
        "s3://b/data/tr.json",
        "s3://b/data/train/1.png",
        "s3://b/data/train/sub/2.png",
    ]
    assert store.list("s3://other/") == []
    assert store.prefix_exists("s3://b/data/test/")
    assert not store.prefix_exists("s3://b/nothing/")


def test_json_and_tree(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    store.put_json("s3://b/x.json", {"a": 1})
    assert store.get_json("s3://b/x.json") == {"a": 1}
    source = tmp_path / "tree"
    (source / "d").mkdir(parents=True)
    (source / "d" / "f.txt").write_text("f")
    (source / "g.txt").write_text("g")
    assert store.put_tree("s3://b/t", source) == ["s3://b/t/d/f.txt", "s3://b/t/g.txt"]
    with pytest.raises(ObjectExistsError):
        store.put_tree("s3://b/t/", source)


def test_materialize_keeps_relative_paths(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    store.put_bytes("s3://b/data/train/a.png", b"a")
    store.put_bytes("s3://b/data/train/sub/b.png", b"b")
    target = tmp_path / "channel"
    assert store.materialize("s3://b/data/train/", target) == 2
    assert (target / "a.png").read_bytes() == b"a"
    assert (target / "sub" / "b.png").read_bytes() == b"b"


def test_mirror_replaces_changed_files_only(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    local = tmp_path / "ckpt"
    local.mkdir()
    (local / "last.pth").write_bytes(b"1")
    assert store.mirror_to(local, "s3://b/ckpt/job") == 1
    assert store.mirror_to(local, "s3://b/ckpt/job") == 0
    # a new file of the same name (as torch.save writes after a rotation) is published again
    (local / "last.pth").unlink()
    (local / "last.pth").write_bytes(b"2")
    assert store.mirror_to(local, "s3://b/ckpt/job/") == 1
    assert store.get_bytes("s3://b/ckpt/job/last.pth") == b"2"
    # a copy with the same bytes is not published again
    other = tmp_path / "other"
    other.mkdir()
    (other / "last.pth").write_bytes(b"2")
    assert store.mirror_to(other, "s3://b/ckpt/job/") == 0
    # materialize gives the reader its own files
    target = tmp_path / "restart"
    store.materialize("s3://b/ckpt/job/", target)
    (target / "last.pth").write_bytes(b"3")
    assert store.get_bytes("s3://b/ckpt/job/last.pth") == b"2"


def test_uri_outside_store_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not inside"):
        LocalStore(tmp_path / "root").uri(tmp_path / "elsewhere")


def test_records_are_json(tmp_path: Path) -> None:
    from workflow.local.store import write_json_atomic

    path = tmp_path / "r" / "x.json"
    write_json_atomic(path, {"b": 2})
    write_json_atomic(path, {"b": 3})
    assert json.loads(path.read_text()) == {"b": 3}


def test_put_file_link_is_exclusive(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    source = tmp_path / "model.tar.gz"
    source.write_bytes(b"tar")
    path = store.put_file("s3://b/m/model.tar.gz", source, link=True)
    assert path.read_bytes() == b"tar" and path.stat().st_ino == source.stat().st_ino
    with pytest.raises(ObjectExistsError):
        store.put_file("s3://b/m/model.tar.gz", source, link=True)
