"""Fixtures of the local runtime's integration tests: a store with a tiny synthetic data set."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from workflow.local.build import LocalImages
from workflow.local.sagemaker import LocalSageMaker, SageMakerSettings
from workflow.local.store import LocalStore

REPO = Path(__file__).resolve().parents[3]


class Collector:
    """A log sink that keeps the lines."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, source: str, line: str) -> None:
        self.lines.append((source, line))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic data set (4 train, 2 validation, 2 test images of 64 px), made once."""
    out = tmp_path_factory.mktemp("dataset") / "data"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mask_r_cnn.synthetic",
            str(out),
            "--train",
            "4",
            "--validation",
            "2",
            "--test",
            "2",
            "--size",
            "64",
            "--seed",
            "0",
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    return out


@pytest.fixture
def store(tmp_path: Path, tiny_dataset: Path) -> LocalStore:
    """A store holding the tiny data set under s3://bucket/data/."""
    store = LocalStore(tmp_path / "root")
    store.put_tree("s3://bucket/data/", tiny_dataset)
    return store


@pytest.fixture
def make_sagemaker(store: LocalStore) -> Iterator[Callable[..., LocalSageMaker]]:
    """Factory of LocalSageMaker running the repository's container/ code."""

    def make(log_sink: Any = None, **settings: Any) -> LocalSageMaker:
        images = LocalImages(store, REPO / "container", "mask-r-cnn")
        return LocalSageMaker(
            store=store,
            resolve_image=images.resolve,
            settings=SageMakerSettings(**{"stop_grace_seconds": 3.0, **settings}),
            log_sink=log_sink,
        )

    yield make


@pytest.fixture
def collector() -> Collector:
    return Collector()


FAKE_SERVE = '''#!/usr/bin/env python3
"""A stand-in serve program: /ping, /execution-parameters, /invocations (echoes sizes)."""
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

BASE = Path(os.environ["SAGEMAKER_BASE_DIR"])
MODEL = (BASE / "model" / "model.txt").read_text().strip() if (BASE / "model" / "model.txt").exists() else "none"
if MODEL == "crash":
    print("model is broken", flush=True)
    sys.exit(3)

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, status, body, kind="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/ping":
            self._send(200, "")
        elif self.path == "/execution-parameters":
            self._send(200, json.dumps({"MaxConcurrentTransforms": 1, "BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 6}))
        else:
            self._send(404, "{}")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Type") == "application/json":
            self._send(415, json.dumps({"error": "unsupported"}))
            return
        self._send(200, json.dumps({"model": MODEL, "bytes": len(body), "type": self.headers.get("Content-Type")}))

HTTPServer((os.environ["SAGEMAKER_BIND_TO_HOST"], int(os.environ["SAGEMAKER_BIND_TO_PORT"])), Handler).serve_forever()
'''


@pytest.fixture
def fake_image(tmp_path: Path) -> Path:
    """A code folder whose mask_r_cnn/serve is a tiny HTTP server (no torch)."""
    folder = tmp_path / "fake-image"
    (folder / "mask_r_cnn").mkdir(parents=True)
    serve = folder / "mask_r_cnn" / "serve"
    serve.write_text(FAKE_SERVE)
    serve.chmod(0o755)
    return folder


@pytest.fixture
def fake_sagemaker(store: LocalStore, fake_image: Path) -> LocalSageMaker:
    """LocalSageMaker whose every image is the fake serve program."""
    return LocalSageMaker(
        store=store,
        resolve_image=lambda uri: fake_image,
        settings=SageMakerSettings(stop_grace_seconds=3.0, ping_timeout_seconds=30),
        log_sink=None,
    )


@pytest.fixture
def model_tarball() -> Callable[[LocalStore, str, str], str]:
    """Return a function writing a model.tar.gz (model.txt = text) into the store."""
    return write_model_tarball


def write_model_tarball(store: LocalStore, uri: str, text: str) -> str:
    """Write a model.tar.gz holding model.txt = text into the store; return its URI."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = text.encode()
        info = tarfile.TarInfo("model.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    store.put_bytes(uri, buffer.getvalue())
    return uri


FAKE_TRAIN = '''#!/usr/bin/env python3
"""A stand-in train program: records what it saw; 'sleep' hyperparameter keeps it running."""
import json, os, sys, time
from pathlib import Path

base = Path(os.environ["SAGEMAKER_BASE_DIR"])
config = base / "input" / "config"
hp = json.loads((config / "hyperparameters.json").read_text())
resource = json.loads((config / "resourceconfig.json").read_text())
seen = {
    "host": resource["current_host"],
    "hosts": resource["hosts"],
    "master": [os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")],
    "job": os.environ.get("TRAINING_JOB_NAME"),
    "commit": os.environ.get("SOURCE_COMMIT"),
    "files": sorted(p.relative_to(base / "input" / "data").as_posix()
                    for p in (base / "input" / "data").rglob("*") if p.is_file()),
    "checkpoints": sorted(p.name for p in (base / "checkpoints").iterdir()),
}
print("epoch=1 step=1 loss=0.5 lr=0.1", flush=True)
(base / "checkpoints" / f"ckpt-{len(seen['checkpoints'])}.txt").write_text("x")
if hp.get("fail"):
    (base / "output" / "failure").write_text(hp["fail"] + "\\nTraceback: details")
    sys.exit(2)
time.sleep(float(hp.get("sleep", "0")))
(base / "model" / "seen.json").write_text(json.dumps(seen))
(base / "model" / "metrics.json").write_text(json.dumps({"train_loss": 0.5}))
'''


@pytest.fixture
def fake_train_image(fake_image: Path) -> Path:
    """The fake image with a fake train program as well."""
    train = fake_image / "mask_r_cnn" / "train"
    train.write_text(FAKE_TRAIN)
    train.chmod(0o755)
    return fake_image
