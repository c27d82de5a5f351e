"""The real image: built from container/Dockerfile, `train` on a mounted tree, `serve` on loopback."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

# The first test also builds the image (torch from PyPI: ~6 GB, several minutes).
pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(3600)]


def test_image_has_the_sagemaker_contract(docker: Any, image: str) -> None:
    inspect = json.loads(docker.run("image", "inspect", image, check=True).stdout)[0]["Config"]
    assert inspect["Labels"]["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"
    which = docker.run("run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c",
                       "command -v train && command -v serve", check=True)  # fmt: skip
    assert which.stdout.split() == [
        "/opt/program/mask_r_cnn/train",
        "/opt/program/mask_r_cnn/serve",
    ]


def test_train_writes_the_model_into_the_mounted_tree(
    docker: Any, image: str, sagemaker_tree: Any
) -> None:
    tree = sagemaker_tree()
    result = docker.run(
        "run", "--rm", "--network", "none", "-v", f"{tree}:/opt/ml",
        "-e", "TRAINING_JOB_NAME=docker-test-job", image, "train",
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    model = tree / "model"
    assert (model / "model.pth").stat().st_size > 1000
    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and "segm_mAP" in metrics
    assert "epoch=1" in result.stdout + result.stderr
    assert not (tree / "output" / "failure").exists()


def test_train_failure_writes_the_failure_file(
    docker: Any, image: str, sagemaker_tree: Any
) -> None:
    tree = sagemaker_tree({"epochs": "many"})
    result = docker.run(
        "run", "--rm", "--network", "none", "-v", f"{tree}:/opt/ml", image, "train", timeout=600
    )  # fmt: skip
    assert result.returncode != 0
    first_line = (tree / "output" / "failure").read_text().splitlines()[0]
    assert "epochs" in first_line and "many" in first_line


def test_serve_answers_ping_and_invocations_on_loopback(
    docker: Any, image: str, sagemaker_tree: Any, dataset: Path, free_port: int
) -> None:
    tree = sagemaker_tree()
    trained = docker.run("run", "--rm", "--network", "none", "-v", f"{tree}:/opt/ml", image,
                         "train", timeout=900)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-4000:]
    name = f"mlops-serve-{free_port}"
    started = docker.run(
        "run", "-d", "--name", name, "--network", "host",
        "-e", f"SAGEMAKER_BIND_TO_PORT={free_port}", "-e", "SAGEMAKER_BIND_TO_HOST=127.0.0.1",
        "-e", "MODEL_SERVER_WORKERS=1",
        "-v", f"{tree / 'model'}:/opt/ml/model:ro", image, "serve",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    docker.containers.append(name)
    url = f"http://127.0.0.1:{free_port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if requests.get(f"{url}/ping", timeout=30).status_code == 200:
                break
        except requests.RequestException:
            pass  # not listening yet, or still loading the model
        state = docker.run("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
        if state != "true" or time.monotonic() > deadline:
            logs = docker.run("logs", name)
            pytest.fail(f"serve never answered /ping (running={state}):\n{logs.stderr[-4000:]}")
        time.sleep(1)
    test_annotations = json.loads((dataset / "test" / "annotations.json").read_text())
    image_file = dataset / "test" / test_annotations["images"][0]["file_name"]
    content_type = "image/png" if image_file.suffix == ".png" else "image/jpeg"
    reply = requests.post(f"{url}/invocations", data=image_file.read_bytes(),
                          headers={"Content-Type": content_type}, timeout=120)  # fmt: skip
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert isinstance(body["predictions"], list)
    for prediction in body["predictions"]:
        assert set(prediction) >= {"label", "score", "box", "mask"}
    bad = requests.post(f"{url}/invocations", data=b"not an image",
                        headers={"Content-Type": "image/png"}, timeout=60)  # fmt: skip
    assert 400 <= bad.status_code < 500
    stopped = docker.run("stop", "-t", "30", name, timeout=120)
    assert stopped.returncode == 0
    exit_code = docker.run("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
    assert exit_code in ("0", "143"), exit_code  # a clean SIGTERM shutdown
