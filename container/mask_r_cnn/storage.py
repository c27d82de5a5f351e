"""What the container writes to disk, written so that a full disk fails cleanly.

- `save_atomically` writes a file (a `torch.save` state or bytes) to a temporary name beside
  its target, flushes, fsyncs and renames it: a reader never sees half a file, and when the
  write fails the temporary file is removed (a leftover in `model/` would end up in
  model.tar.gz). A full disk (ENOSPC, or EDQUOT past a quota) becomes `NoSpaceError`, one
  sentence naming the path, instead of torch's "PytorchStreamWriter failed writing file".
- `reserve_failure_space` sets aside a few KiB beside `output/failure` when a job starts, and
  `write_failure` frees them just before writing the failure file, so the reason of a job that
  filled the disk still reaches `FailureReason`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from .errors import NoSpaceError

NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
FAILURE_RESERVE_NAME = ".failure-reserve"
FAILURE_RESERVE_BYTES = 64 * 1024
# SageMaker keeps the first 1024 characters of output/failure as FailureReason; the rest
# (a traceback) is for the job log reader, and must fit in the reserve.
FAILURE_MAX_BYTES = FAILURE_RESERVE_BYTES - 1024


def no_space_error(exc: BaseException | None) -> OSError | None:
    """The ENOSPC/EDQUOT `OSError` in `exc`'s chain (torch wraps it in a RuntimeError)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def open_for_writing(fd: int, path: Path) -> IO[bytes]:
    """A binary file object over `fd` (the file being written as `path`); tests replace it."""
    del path
    return os.fdopen(fd, "wb")


def save_atomically(path: Path, write: Callable[[IO[bytes]], Any], what: str) -> Path:
    """Write `path` through `write(handle)` into a temporary file, then rename it into place.

    Args:
        path: the file to (re)place.
        write: writes the content to the binary handle, e.g. `lambda f: torch.save(state, f)`.
        what: what the file is, for the message (e.g. "checkpoint-000000004.pth").

    Returns:
        `path`.

    Raises:
        NoSpaceError: the device holding `path` is full (the temporary file is removed).
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the file from other users
        with open_for_writing(fd, tmp) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        full = no_space_error(exc)
        if full is not None:
            raise NoSpaceError(
                f"no space left on device at {path.parent} while writing {what} "
                f"({os.strerror(full.errno or errno.ENOSPC)}); give the job more disk "
                "(training.volume_size_gb, SageMaker's VolumeSizeInGB) or keep fewer "
                "checkpoints (hyperparameter keep_checkpoints)."
            ) from exc
        raise
    return path


def save_torch(path: Path, state: Any, what: str) -> Path:
    """`torch.save(state)` to `path` with `save_atomically`."""
    return save_atomically(path, lambda handle: torch.save(state, handle), what)


def save_bytes(path: Path, data: bytes, what: str) -> Path:
    """Write `data` to `path` with `save_atomically`."""
    return save_atomically(path, lambda handle: handle.write(data), what)


def reserve_failure_space(failure: Path) -> None:
    """Write `FAILURE_RESERVE_BYTES` beside the failure file, freed by `write_failure`."""
    try:
        failure.parent.mkdir(parents=True, exist_ok=True)
        (failure.parent / FAILURE_RESERVE_NAME).write_bytes(b"\0" * FAILURE_RESERVE_BYTES)
    except OSError:
        pass  # already full or read-only: write_failure still tries


def release_failure_space(failure: Path) -> None:
    """Remove the reserve (at the end of a job, or to make room for the failure file)."""
    (failure.parent / FAILURE_RESERVE_NAME).unlink(missing_ok=True)


def write_failure(path: Path, first_line: str, details: str = "") -> None:
    """Write `output/failure`: the reason on the first line, details (a traceback) after.

    The reserve is freed first, and the first line is written and flushed on its own, so a full
    disk can at most cut the details.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    release_failure_space(path)
    head = (first_line + "\n").encode("utf-8")
    tail = (f"\n{details}" if details else "").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    handle = open_for_writing(fd, path)
    try:
        for part in (head, tail[: max(FAILURE_MAX_BYTES - len(head), 0)]):
            handle.write(part)
            handle.flush()
    except OSError as exc:
        if no_space_error(exc) is None:
            raise  # a full disk cuts the file at the last part that fit; nothing more to do
    finally:
        with contextlib.suppress(OSError):  # a tail that did not fit is still buffered
            handle.close()
