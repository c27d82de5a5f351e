"""The local image build with a fake docker on PATH."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.container_source import make_source

from workflow.local.build import ImageError, LocalBuilder, LocalImages
from workflow.local.store import LocalStore

pytestmark = pytest.mark.integration


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
    builder = LocalBuilder(images)
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
