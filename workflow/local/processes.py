"""The process plumbing of the local SageMaker: ports, process groups, their logs.

`stop_process_group` stops a process group (SIGTERM, then SIGKILL after the grace); `pid_alive`
tells a live process from a zombie; `pump_lines` copies a child's output into its log file and
the progress sink; `base_environ` is the environment a job starts from; `free_port` a loopback
port.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

LogSink = Callable[[str, str], None]


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process_group(pid: int, grace: float) -> int | None:
    """SIGTERM a process group, wait up to ``grace`` seconds, then SIGKILL it.

    Returns:
        The exit status when the process was our child and was reaped, else ``None``.
    """
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return _reap(pid)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            status = _reap(pid)
            if status is not None or not pid_alive(pid):
                return status
            time.sleep(0.05)
    return _reap(pid)


def _reap(pid: int) -> int | None:
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status) if done else None


def process_cmdline(pid: int) -> list[bytes] | None:
    """A process's command line, or ``None`` where there is no ``/proc`` (macOS)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return [] if Path("/proc/self").exists() else None  # gone, or no /proc


def pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def pump_lines(stream: Any, log_path: Path, source: str, sink: LogSink | None) -> threading.Thread:
    """Copy a process's output line by line to a log file and the sink, in a thread."""

    def run() -> None:
        with log_path.open("a", encoding="utf-8", errors="replace") as log:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                log.write(line + "\n")
                log.flush()
                if sink is not None:
                    try:
                        sink(source, line)
                    except Exception:  # a broken sink must not stop the log file
                        logger.exception("log sink failed")
        stream.close()

    thread = threading.Thread(target=run, name=f"log-{source}", daemon=True)
    thread.start()
    return thread


def start_logged(
    command: list[str], log_path: Path, env: Mapping[str, str], cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session, its output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    try:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()  # the child holds its own copy


def base_environ(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SAGEMAKER_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update({str(k): str(v) for k, v in extra.items()})
    return env


def import_root(package: str = "workflow") -> Path:
    """The folder ``package`` was imported from: a child's PYTHONPATH, so it runs the same code.

    Not the checkout (that comes from configuration): an installed package answers its
    site-packages folder, a checkout on ``sys.path`` its own folder.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"the {package} package is not importable; install it.")
    return Path(spec.origin).resolve().parent.parent
