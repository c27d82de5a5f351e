from __future__ import annotations

import errno
import io
import os
from pathlib import Path
from typing import IO, Any

import pytest
import torch
from mask_r_cnn import storage
from mask_r_cnn.errors import NoSpaceError


class FullFile(io.FileIO):
    """Writes the first `room` bytes, then raises OSError(errno)."""

    def __init__(self, fd: int, room: int, code: int = errno.ENOSPC) -> None:
        super().__init__(fd, "wb")
        self.room, self.code = room, code

    def write(self, data: Any) -> int:
        size = len(memoryview(data))
        if size > self.room:
            raise OSError(self.code, os.strerror(self.code))
        self.room -= size
        return int(super().write(data))


def full_after(room: int, code: int = errno.ENOSPC) -> Any:
    def open_for_writing(fd: int, path: Path) -> IO[bytes]:
        return io.BufferedWriter(FullFile(fd, room, code), buffer_size=64)

    return open_for_writing


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_torch_save_on_a_full_disk_names_the_path_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    monkeypatch.setattr(storage, "open_for_writing", full_after(1000, code))
    with pytest.raises(NoSpaceError, match=rf"^no space left on device at {tmp_path} while"):
        storage.save_torch(tmp_path / "model.pth", {"w": torch.zeros(10_000)}, "model.pth")
    assert list(tmp_path.iterdir()) == []


def test_other_write_errors_are_not_disguised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "open_for_writing", full_after(10, errno.EIO))
    with pytest.raises(OSError) as info:
        storage.save_bytes(tmp_path / "m.json", b"x" * 100, "m.json")
    assert not isinstance(info.value, NoSpaceError)
    assert list(tmp_path.iterdir()) == []


def test_failure_file_keeps_its_first_line_when_the_details_do_not_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failure = tmp_path / "output" / "failure"
    storage.reserve_failure_space(failure)
    assert (failure.parent / storage.FAILURE_RESERVE_NAME).stat().st_size > 0
    monkeypatch.setattr(storage, "open_for_writing", full_after(100))
    storage.write_failure(failure, "no space left on device at /opt/ml/model.", "T" * 5000)
    assert failure.read_text() == "no space left on device at /opt/ml/model.\n"
    assert not (failure.parent / storage.FAILURE_RESERVE_NAME).exists()
