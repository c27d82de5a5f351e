"""The image files stay honest: pins, entry points, the Dockerfile contract."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CONTAINER = REPO / "container"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_image_requirements_use_the_lock_file_pins() -> None:
    image = _pins(CONTAINER / "requirements.txt")
    lock = _pins(REPO / "requirements.lock")
    assert {"flask", "gunicorn", "pycocotools", "pillow", "numpy", "werkzeug"} <= set(image)
    for name, version in image.items():
        assert lock.get(name) == version, f"{name}=={version} differs from requirements.lock"


def test_dockerfile_contract() -> None:
    text = (CONTAINER / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=\S*pytorch\S*cuda\S*$", text, re.M)
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", text, re.M)
    assert "com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true" in text
    assert re.search(r"^ARG INSTALL_TORCH=0$", text, re.M)
    lock = _pins(REPO / "requirements.lock")
    assert f"ARG TORCH_VERSION={lock['torch']}" in text
    assert f"ARG TORCHVISION_VERSION={lock['torchvision']}" in text
    assert "COPY mask_r_cnn /opt/program/mask_r_cnn" in text
    assert re.search(r'ENV PATH="/opt/venv/bin:/opt/program/mask_r_cnn:\$\{PATH\}"', text)
    assert "nginx" in text
    assert "--system-site-packages" in text  # the base's torch stays visible in the venv
    assert "ENTRYPOINT" not in text  # `docker run <image> train|serve` finds them on PATH


@pytest.mark.parametrize("program", ["train", "serve"])
def test_entry_points_are_tiny_executables(program: str) -> None:
    path = CONTAINER / "mask_r_cnn" / program
    assert path.stat().st_mode & stat.S_IXUSR
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env python3\n")
    assert f"from mask_r_cnn.{program} import main" in text
    assert len(text.splitlines()) < 20
