"""`serve`: the SageMaker serving program (nginx → gunicorn → Flask, or gunicorn alone).

SageMaker runs `docker run <image> serve`. When `nginx` is on PATH (the image) and
`MASK_R_CNN_NGINX` is not `0`, nginx listens on `SAGEMAKER_BIND_TO_PORT` (default 8080) and
proxies to gunicorn on a unix socket; otherwise (local runs, tests) gunicorn binds the port
itself. SIGTERM and SIGINT are forwarded (nginx gets SIGQUIT, gunicorn SIGTERM); when either
child exits, the other is stopped and `serve` exits, so the platform restarts the container.
See `settings.py` for every environment variable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from .errors import UserInputError
from .logs import configure_logging
from .settings import ServeSettings

logger = logging.getLogger("mask_r_cnn")

PACKAGE_DIR = Path(__file__).resolve().parent
CONTAINER_DIR = PACKAGE_DIR.parent
NGINX_TEMPLATE = PACKAGE_DIR / "nginx.conf"
PROXY_TIMEOUT_MARGIN = 5
HTTP_THREADS = 8  # connections a worker serves at once (/ping, uploads, one inference)


def render_nginx_conf(settings: ServeSettings, socket_path: Path, run_dir: Path) -> str:
    """Fill the nginx.conf template for these settings."""
    values = {
        "RUN_DIR": str(run_dir),
        "SOCKET": str(socket_path),
        "HOST": settings.host,
        "PORT": str(settings.port),
        "MAX_BODY_BYTES": str(settings.max_payload_bytes),
        "MAX_PAYLOAD_MB": str(settings.max_payload_mb),
        "PROXY_TIMEOUT": str(settings.timeout + PROXY_TIMEOUT_MARGIN),
        # As root, nginx would drop its workers to an account that cannot use our temp dirs.
        "USER_DIRECTIVE": "user root;" if os.geteuid() == 0 else "",
    }
    text = NGINX_TEMPLATE.read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def gunicorn_command(settings: ServeSettings, bind: str) -> list[str]:
    """The gunicorn command line (threaded workers, one model per worker).

    Each worker answers `HTTP_THREADS` connections at once (inference itself is one at a time
    per model), so a slow client cannot hold a worker and `/ping` answers during slowloris;
    `http_worker.JsonThreadWorker` also cuts slow requests off and answers HTTP-layer errors
    in JSON.
    """
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        bind,
        "--workers",
        str(settings.workers),
        "--worker-class",
        "mask_r_cnn.http_worker.JsonThreadWorker",
        "--threads",
        str(HTTP_THREADS),
        # Close after each response, as the sync worker did: a 413 leaves the rest of a body
        # unread, and a kept-alive connection the worker then drops would fail the client's
        # next request on it. nginx talks to gunicorn without keep-alive anyway.
        "--keep-alive",
        "0",
        "--timeout",
        str(settings.timeout),
        "--graceful-timeout",
        "20",
        "--error-logfile",
        "-",
        "--log-level",
        "info",
        "--no-control-socket",
        "mask_r_cnn.wsgi:application()",
    ]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(CONTAINER_DIR), env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run(settings: ServeSettings) -> int:
    """Start the servers and supervise them until one exits or a signal arrives.

    Returns:
        0 after a requested shutdown, otherwise the exit code of the child that died (or 1).
    """
    if not (settings.model_dir / "metadata.json").is_file():
        raise UserInputError(
            f"{settings.model_dir} holds no metadata.json; extract a model.tar.gz written by "
            "this container's train program there (or set SAGEMAKER_BASE_DIR)."
        )
    nginx = shutil.which("nginx") if settings.use_nginx else None
    run_dir = Path(tempfile.mkdtemp(prefix="mask-r-cnn-serve-"))
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        del frame
        stopping = True
        logger.info("serve: signal %d, stopping", signum)
        for name, child in children.items():
            if child.poll() is None:
                child.send_signal(signal.SIGQUIT if name == "nginx" else signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        if nginx:
            socket_path = run_dir / "gunicorn.sock"
            conf = run_dir / "nginx.conf"
            conf.write_text(render_nginx_conf(settings, socket_path, run_dir), encoding="utf-8")
            bind = f"unix:{socket_path}"
        else:
            bind = f"{settings.host}:{settings.port}"
        logger.info(
            "serve: %s workers=%d timeout=%ds listening on %s:%d",
            "nginx+gunicorn" if nginx else "gunicorn",
            settings.workers,
            settings.timeout,
            settings.host,
            settings.port,
        )
        # Own process groups: if a master dies, its workers can still be found and stopped.
        children["gunicorn"] = subprocess.Popen(
            gunicorn_command(settings, bind), env=_child_env(), start_new_session=True
        )
        if nginx:
            children["nginx"] = subprocess.Popen([nginx, "-c", str(conf)], start_new_session=True)
        return _supervise(children, lambda: stopping)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
            _kill_group(child.pid)  # orphaned workers of a master that died
        shutil.rmtree(run_dir, ignore_errors=True)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _supervise(children: dict[str, subprocess.Popen[bytes]], stopping: object) -> int:
    while True:
        for name, child in children.items():
            code = child.poll()
            if code is None:
                continue
            requested = bool(stopping())  # type: ignore[operator]
            if not requested:
                logger.error("serve: %s exited with code %s; stopping", name, code)
            for other in children.values():
                if other is not child and other.poll() is None:
                    other.terminate()
            deadline = time.monotonic() + 25
            for other in children.values():
                try:
                    other.wait(timeout=max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    other.kill()
                    other.wait()
            return 0 if requested else (code or 1)
        time.sleep(0.2)


def main() -> None:
    """Console entry point of `serve`."""
    configure_logging()
    try:
        settings = ServeSettings.from_environ()
        sys.exit(run(settings))
    except UserInputError as exc:
        logger.error("error: %s", exc)
        sys.exit(2)
