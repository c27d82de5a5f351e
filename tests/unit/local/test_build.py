from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers.container_source import make_source

from workflow.local.build import ImageError, LocalBuilder, LocalImages, content_hash
from workflow.local.store import LocalStore


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


def _poll(builder: LocalBuilder, build_id: str) -> dict[str, Any]:
    builder.wait(10)
    (build,) = builder.batch_get_builds([build_id])["builds"]
    return build


def test_start_build_returns_at_once_and_batch_get_builds_follows_it(tmp_path: Path) -> None:
    # Shapes: https://docs.aws.amazon.com/codebuild/latest/APIReference/API_StartBuild.html and
    # https://docs.aws.amazon.com/codebuild/latest/APIReference/API_BatchGetBuilds.html
    images = LocalImages(LocalStore(tmp_path / "root"), make_source(tmp_path), "mask-r-cnn")
    builder = LocalBuilder(images, use_docker=False)
    response = builder.start_build(
        projectName="proj",
        environmentVariablesOverride=[
            {"name": "COMMIT_ID", "value": "1234567890", "type": "PLAINTEXT"},
            {"name": "IMAGE_TAG", "value": "1234567-20261203010203", "type": "PLAINTEXT"},
        ],
    )
    build_id = response["build"]["id"]
    assert build_id.startswith("proj:") and response["build"]["buildStatus"] == "IN_PROGRESS"
    build = _poll(builder, build_id)
    assert (build["buildStatus"], build["currentPhase"]) == ("SUCCEEDED", "COMPLETED")
    # the tag the start_build Lambda decided (and returned as ImageUri) is the image's tag
    assert build["exportedEnvironmentVariables"] == [
        {"name": "IMAGE_URI", "value": "local/mask-r-cnn:1234567-20261203010203"}
    ]
    assert (images.resolve("local/mask-r-cnn:1234567-20261203010203") / "mask_r_cnn").is_dir()
    # the same content under another tag is a link to the one snapshot, not a second copy
    again = images.snapshot("1234567890", "1234567-20261203010204")
    assert images.resolve(again).resolve() == images.folder(images.tag_for("1234567890")).resolve()
    assert len([p for p in images.folder("x").parent.iterdir() if not p.is_symlink()]) == 1
    assert builder.batch_get_builds(["proj:nope"]) == {
        "builds": [],
        "buildsNotFound": ["proj:nope"],
    }


def test_failed_build_reports_failed(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    builder = LocalBuilder(LocalImages(LocalStore(tmp_path / "root"), empty, "r"), use_docker=False)
    build_id = builder.start_build(projectName="p")["build"]["id"]
    build = _poll(builder, build_id)
    assert build["buildStatus"] == "FAILED"
    assert "mask_r_cnn/train" in build["phases"][0]["contexts"][0]["message"]


def test_the_engine_handler_answers_in_the_aws_sdk_shape(tmp_path: Path) -> None:
    """Step Functions' aws-sdk integrations capitalise the members of the answer."""
    images = LocalImages(LocalStore(tmp_path / "root"), make_source(tmp_path), "r")
    builder = LocalBuilder(images, use_docker=False)
    build_id = builder.start_build(projectName="p")["build"]["id"]
    builder.wait(10)
    answer = builder.describe_builds({"Ids": [build_id]}, None)
    assert answer["Builds"][0]["BuildStatus"] == "SUCCEEDED"
    assert answer["Builds"][0]["Id"] == build_id and answer["BuildsNotFound"] == []


def test_no_docker_means_snapshot_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workflow.local import build

    monkeypatch.setenv("PATH", str(tmp_path))
    assert not build.docker_available()
