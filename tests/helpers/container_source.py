"""A tiny container source folder for the local image tests."""

from __future__ import annotations

from pathlib import Path


def make_source(tmp_path: Path) -> Path:
    source = tmp_path / "container"
    (source / "mask_r_cnn" / "__pycache__").mkdir(parents=True)
    (source / "mask_r_cnn" / "train").write_text("print('train')\n")
    (source / "mask_r_cnn" / "serve").write_text("print('serve')\n")
    (source / "mask_r_cnn" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    (source / "Dockerfile").write_text("FROM scratch\n")
    return source
