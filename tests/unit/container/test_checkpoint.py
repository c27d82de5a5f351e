from __future__ import annotations

from pathlib import Path

import torch
from mask_r_cnn.checkpoint import list_checkpoints, load_latest, save_checkpoint


def test_save_keeps_the_newest_and_leaves_no_temp_files(tmp_path: Path) -> None:
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, {"step": step, "w": torch.ones(2) * step}, step, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "checkpoint-000000002.pth",
        "checkpoint-000000003.pth",
    ]
    assert not list(tmp_path.glob("*.tmp"))
    state = load_latest(tmp_path)
    assert state is not None and state["step"] == 3
    assert state["path"].endswith("checkpoint-000000003.pth")


def test_an_existing_checkpoint_is_never_overwritten(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, {"v": 1}, 5, keep=3)
    save_checkpoint(tmp_path, {"v": 2}, 5, keep=3)
    assert torch.load(path, weights_only=True) == {"v": 1}


def test_unreadable_newest_falls_back_to_older(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, {"step": 1}, 1, keep=5)
    (tmp_path / "checkpoint-000000009.pth").write_bytes(b"truncated")
    (tmp_path / ".checkpoint-abc.tmp").write_bytes(b"left by a SIGKILL")
    state = load_latest(tmp_path)
    assert state is not None and state["step"] == 1


def test_no_checkpoints(tmp_path: Path) -> None:
    assert load_latest(tmp_path / "missing") is None
    assert load_latest(tmp_path) is None
