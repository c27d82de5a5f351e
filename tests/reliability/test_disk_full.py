"""A full disk during training: one sentence naming the path, no partial file, a failure file.

`mask_r_cnn.train.run` trains the tiny model in-process on a temporary `/opt/ml` tree while a
simulated device refuses writes with ENOSPC: every file the container writes goes through
`mask_r_cnn.storage.open_for_writing`, which the test replaces with a file whose `write`
raises `OSError(ENOSPC)` for the files on the "full" device (the checkpoint folder, or the
model folder). Like a real full disk, the failure file is refused too until the space reserved
at the start of the job is freed. No real disk is filled.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
from pathlib import Path
from typing import IO, Any

import pytest
from reliability_kit import FAST_HYPERPARAMETERS, Tally

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AREA = "training faults"


class FullFile(io.FileIO):
    """A file on a full device: every write raises ENOSPC (after the first `room` bytes)."""

    def __init__(self, fd: int, room: int) -> None:
        super().__init__(fd, "wb")
        self.room = room

    def write(self, data: Any) -> int:
        size = len(memoryview(data))
        if size > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= size
        return int(super().write(data))


def full_device(base: Path, full_under: Path) -> Any:
    reserve = base / "output" / ".failure-reserve"
    failure = base / "output" / "failure"

    def open_for_writing(fd: int, path: Path) -> IO[bytes]:
        full = reserve.exists() and (path.is_relative_to(full_under) or path == failure)
        if full:
            return io.BufferedWriter(FullFile(fd, room=4096))
        return os.fdopen(fd, "wb")

    return open_for_writing


@pytest.mark.parametrize("where", ["checkpoints", "model"])
def test_a_full_disk_fails_the_job_with_the_path_and_leaves_no_partial_file(
    where: str, tmp_path: Path, tiny_data: Path, tally: Tally, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mask_r_cnn import storage
    from mask_r_cnn.train import run

    base = tmp_path / "ml"
    config = base / "input" / "config"
    config.mkdir(parents=True)
    hyperparameters = {**FAST_HYPERPARAMETERS, "checkpoint_steps": "1", "augment": "false"}
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(
        json.dumps({"training": {"TrainingInputMode": "File"}})
    )
    shutil.copytree(tiny_data / "train", base / "input" / "data" / "training")
    monkeypatch.setattr(storage, "open_for_writing", full_device(base, base / where))
    code = run({"SAGEMAKER_BASE_DIR": str(base), "SM_CHECKPOINT_DIR": str(base / "checkpoints")})
    failure = base / "output" / "failure"
    first = failure.read_text().splitlines()[0] if failure.is_file() else ""
    leftovers = [p.name for p in (base / where).iterdir() if p.name.startswith(".")]
    broke = (
        code != 1
        or not first.startswith(f"no space left on device at {base / where} while writing")
        or bool(leftovers)
        or (base / "model" / "model.pth").exists()
    )
    tally.row(AREA, "disk full (ENOSPC) at a checkpoint / at model.pth").count(
        f"exit {code}", broke
    )
    assert not broke, f"exit {code}, failure {first!r}, left {leftovers}"
    assert "VolumeSizeInGB" in first
    assert "Traceback" in failure.read_text()  # the details fit too, after the reserve was freed
    assert not (base / "output" / ".failure-reserve").exists()
