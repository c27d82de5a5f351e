"""A tiny image that is not the kit's, made without any registry: this machine's Python in a
``FROM scratch`` file tree, imported with ``docker import``.

Its entry point follows SageMaker's contract on its own: ``train`` reads ``/opt/ml/input/config``,
writes ``/opt/ml/model/model.json`` (what it saw: hyperparameters, resource config, channels,
environment), and on a bad hyperparameter writes ``/opt/ml/output/failure`` and exits 1; ``serve``
answers ``GET /ping`` and ``POST /invocations`` on ``SAGEMAKER_BIND_TO_PORT`` (it carries the
label that says so), from the model in ``/opt/ml/model``.
"""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
from pathlib import Path

BIND_TO_PORT_LABEL = "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"
PYTHON = Path("/usr/bin/python3")
SKIPPED = {"test", "tests", "site-packages", "dist-packages", "idlelib", "tkinter", "turtledemo",
           "ensurepip", "lib2to3", "pydoc_data", "__pycache__"}  # fmt: skip

PROGRAM = r"""
import json, os, signal, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

ML = Path("/opt/ml")


def train():
    config = ML / "input" / "config"
    hyperparameters = json.loads((config / "hyperparameters.json").read_text())
    print("train: hyperparameters", sorted(hyperparameters.items()), flush=True)
    try:
        epochs = int(hyperparameters.get("epochs", "1"))
    except ValueError:
        (ML / "output" / "failure").write_text(
            f"epochs={hyperparameters['epochs']!r} is not a whole number; pass e.g. epochs=2."
        )
        print("train: bad epochs", flush=True)
        sys.exit(1)
    time.sleep(float(hyperparameters.get("sleep", "0")))
    data = ML / "input" / "data"
    seen = {
        "hyperparameters": hyperparameters,
        "epochs": epochs,
        "resourceconfig": json.loads((config / "resourceconfig.json").read_text()),
        "inputdataconfig": json.loads((config / "inputdataconfig.json").read_text()),
        "files": sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file()),
        "environment": {k: os.environ.get(k) for k in ("TRAINING_JOB_NAME", "TRAINING_JOB_ARN",
                                                      "MY_SETTING", "MASTER_PORT")},
        "checkpoints": (ML / "checkpoints").is_dir(),
    }
    (ML / "model" / "model.json").write_text(json.dumps(seen))
    if seen["checkpoints"]:
        (ML / "checkpoints" / "last.txt").write_text(f"epoch {epochs}\n")
    (ML / "output" / "data").mkdir(parents=True, exist_ok=True)
    (ML / "output" / "data" / "summary.txt").write_text(f"epochs {epochs}\n")
    print(f"train: epoch={epochs} loss=0.5", flush=True)


class Handler(BaseHTTPRequestHandler):
    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/ping":
            self._answer(200, {"status": "ok"})
        else:
            self._answer(404, {"error": self.path})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        model = json.loads((ML / "model" / "model.json").read_text())
        self._answer(200, {"epochs": model["epochs"], "echo": body.decode(),
                           "content_type": self.headers.get("Content-Type")})


def serve():
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    server = HTTPServer(("0.0.0.0", port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 ignores SIGTERM otherwise
    print(f"serve: listening on {port}", flush=True)
    server.serve_forever()


{"train": train, "serve": serve}[sys.argv[1]]()
"""


def _libraries(binary: Path) -> list[Path]:
    """The shared libraries ``ldd`` lists for ``binary`` (with the loader)."""
    output = subprocess.run(
        ["ldd", str(binary)], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return [Path(p) for p in re.findall(r"(/\S+) \(0x", output)]


def _add(tar: tarfile.TarFile, path: Path) -> None:
    """Add ``path`` (following links) at its own location."""
    if path.is_dir():
        for child in sorted(path.iterdir()):
            if child.name not in SKIPPED:
                _add(tar, child)
        return
    if path.exists():  # a dangling link (a Debian config file) is left out
        tar.add(path.resolve(), arcname=str(path).lstrip("/"), recursive=False)


def build_foreign_image(tag: str, env: dict[str, str]) -> None:
    """Import the image ``tag`` into the engine of ``env`` (``DOCKER_HOST``)."""
    binary = PYTHON.resolve()
    stdlib = Path(
        subprocess.run(
            [str(binary), "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()
    )  # fmt: skip
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add(tar, binary)
        for library in _libraries(binary):
            _add(tar, library)
        _add(tar, stdlib)
        program = PROGRAM.encode()
        info = tarfile.TarInfo("opt/program/entry.py")
        info.size, info.mode = len(program), 0o755
        tar.addfile(info, io.BytesIO(program))
    entrypoint = f'ENTRYPOINT ["{binary}", "/opt/program/entry.py"]'
    subprocess.run(
        ["docker", "import", "--change", entrypoint,
         "--change", f"LABEL {BIND_TO_PORT_LABEL}=true", "-", tag],
        input=buffer.getvalue(), env=env, capture_output=True, check=True, timeout=300,
    )  # fmt: skip
