from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from workflow.local.build import ImageError, LocalBuilder, LocalImages, content_hash
from workflow.local.store import LocalStore


def make_source(tmp_path: Path) -> Path:
    source = tmp_path / "container"
    (source / "mask_r_cnn" / "__pycache__").mkdir(parents=True)
    (source / "mask_r_cnn" / "train").write_text("print('train')\n")
    (source / "mask_r_cnn" / "serve").write_text("print('serve')\n")
    (source / "mask_r_cnn" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    (source / "Dockerfile").write_text("FROM scratch\n")
    return source


def test_snapshot_is_content_addressed_and_never_overwritten(tmp_path: Path) -> None:
    source = make_source(tmp_path)
    images = LocalImages(LocalStore(tmp_path / "root"), source, "mask-r-cnn")
    uri = images.snapshot("ABCDEF0123456789")
    assert uri == f"local/mask-r-cnn:abcdef0-{content_hash(source)[:12]}"
    folder = images.resolve(uri)
    assert (folder / "mask_r_cnn" / "train").read_text() == "print('train')\n"
    assert not (folder / "mask_r_cnn" / "__pycache__").exists()
    # same content, same commit -> same image; the snapshot is kept as it was
    assert images.snapshot("abcdef0123") == uri
    # pyc files do not change the hash; a source change does, and the old image stays intact
    (source / "mask_r_cnn" / "__pycache__" / "y.pyc").write_bytes(b"more")
    assert images.snapshot("abcdef0") == uri
    (source / "mask_r_cnn" / "train").write_text("print('train v2')\n")
    uri2 = images.snapshot("abcdef0")
    assert uri2 != uri
    assert (images.resolve(uri) / "mask_r_cnn" / "train").read_text() == "print('train')\n"
    assert (images.resolve(uri2) / "mask_r_cnn" / "train").read_text() == "print('train v2')\n"


def test_resolve_unknown_local_image_and_foreign_uri(tmp_path: Path) -> None:
    source = make_source(tmp_path)
    images = LocalImages(LocalStore(tmp_path / "root"), source, "mask-r-cnn")
    with pytest.raises(ImageError, match="local/mask-r-cnn:nope does not exist"):
        images.resolve("local/mask-r-cnn:nope")
    ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mask-r-cnn:1"
    assert images.resolve(ecr) == source.resolve()


def test_snapshot_needs_a_train_program(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageError, match="has no mask_r_cnn/train"):
        LocalImages(LocalStore(tmp_path / "root"), empty, "r").snapshot("abc")


def test_start_build_answers_the_token_from_a_thread(tmp_path: Path) -> None:
    source = make_source(tmp_path)
    images = LocalImages(LocalStore(tmp_path / "root"), source, "mask-r-cnn")
    answers: list[tuple[Any, ...]] = []
    done = threading.Event()
    attempts = {"n": 0}

    def success(token: str, output: dict[str, Any]) -> None:
        attempts["n"] += 1
        if attempts["n"] == 1:  # the engine does not wait on the token yet
            raise KeyError("TaskDoesNotExist")
        answers.append((token, output))
        done.set()

    builder = LocalBuilder(images, success, lambda *a: None, use_docker=False)
    response = builder.start_build(
        projectName="proj",
        environmentVariablesOverride=[
            {"name": "TASK_TOKEN", "value": "tok", "type": "PLAINTEXT"},
            {"name": "COMMIT_ID", "value": "1234567890", "type": "PLAINTEXT"},
        ],
    )
    assert response["build"]["id"].startswith("proj:")
    assert done.wait(10)
    token, output = answers[0]
    assert token == "tok"
    assert output["ImageUri"].startswith("local/mask-r-cnn:1234567-")
    assert output["CommitId"] == "1234567890"


def test_failed_build_sends_task_failure(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    images = LocalImages(LocalStore(tmp_path / "root"), empty, "r")
    failures: list[tuple[str, str, str]] = []
    builder = LocalBuilder(images, lambda *a: None, lambda *a: failures.append(a), use_docker=False)
    builder.start_build(
        projectName="p", environmentVariablesOverride=[{"name": "TASK_TOKEN", "value": "t"}]
    )
    builder.wait(10)
    assert failures and failures[0][:2] == ("t", "BuildFailed")
    assert "mask_r_cnn/train" in failures[0][2]


def test_docker_build_when_an_engine_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workflow.local import build

    calls = tmp_path / "calls.txt"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(
        f'#!/bin/sh\necho "$@" >> {calls}\n[ "$1" = build ] && [ -n "$FAIL" ] && exit 1\nexit 0\n'
    )
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("MLOPS_BASE_IMAGE", "local/base:test")  # no debootstrap in a unit test
    assert build.docker_available()
    source = make_source(tmp_path)
    images = LocalImages(LocalStore(tmp_path / "root"), source, "mask-r-cnn")
    builder = LocalBuilder(images, lambda *a: None, lambda *a: None)
    uri = builder.build("abc1234")
    context = images.resolve(uri)
    assert context != source.resolve()  # the snapshot is what gets built
    assert (
        f"build --network host --build-arg BASE_IMAGE=local/base:test --build-arg INSTALL_TORCH=1 "
        f"--build-arg SOURCE_COMMIT=abc1234 -t {uri} -f {context}/Dockerfile {context}"
    ) in calls.read_text()
    monkeypatch.setenv("FAIL", "1")
    (source / "Dockerfile").write_text("FROM scratch\nRUN false\n")
    with pytest.raises(ImageError, match=r"docker build of local/mask-r-cnn:abc1234-.* failed"):
        builder.build("abc1234")


def test_no_docker_means_snapshot_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workflow.local import build

    monkeypatch.setenv("PATH", str(tmp_path))
    assert not build.docker_available()
