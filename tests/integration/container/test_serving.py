"""`serve` as a process (gunicorn alone) on the session's trained model, over real HTTP."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image
from pycocotools import mask as mask_utils

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]


def _test_image(synthetic_data: Path, index: int = 0) -> tuple[bytes, dict[str, Any]]:
    doc = json.loads((synthetic_data / "test" / "annotations.json").read_text())
    record = doc["images"][index]
    return (synthetic_data / "test" / record["file_name"]).read_bytes(), record


def _check_predictions(reply: requests.Response, width: int, height: int) -> list[dict[str, Any]]:
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"].startswith("application/json")
    doc = reply.json()
    assert doc["model"]["backbone"] == "resnet18_fpn"
    assert doc["model"]["source_commit"] == "0123abc"
    predictions = doc["predictions"]
    scores = [p["score"] for p in predictions]
    assert scores == sorted(scores, reverse=True)
    for p in predictions:
        assert set(p) == {"label", "category", "score", "box", "mask"}
        assert (p["label"], p["category"]) in {(1, "circle"), (2, "square"), (3, "triangle")}
        assert p["mask"]["size"] == [height, width]
        decoded = mask_utils.decode(
            {"size": p["mask"]["size"], "counts": p["mask"]["counts"].encode()}
        )
        assert decoded.shape == (height, width)
        x1, y1, x2, y2 = p["box"]
        assert 0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height
    return predictions


ALL = {"X-Amzn-SageMaker-Custom-Attributes": "score_threshold=0"}


def test_ping_is_200_once_loaded(server: Any) -> None:
    reply = requests.get(f"{server.url}/ping", timeout=10)
    assert reply.status_code == 200


def test_jpeg_png_and_grayscale_images(server: Any, synthetic_data: Path) -> None:
    jpeg, record = _test_image(synthetic_data, 0)
    assert jpeg[:2] == b"\xff\xd8"
    got = _check_predictions(
        requests.post(
            f"{server.url}/invocations",
            data=jpeg,
            headers={"Content-Type": "image/jpeg", **ALL},
            timeout=60,
        ),
        record["width"],
        record["height"],
    )
    assert got, "threshold 0 keeps every detection of the barely trained model"
    png, record = _test_image(synthetic_data, 1)
    assert png[:4] == b"\x89PNG"
    _check_predictions(
        requests.post(
            f"{server.url}/invocations",
            data=png,
            headers={"Content-Type": "image/png", **ALL},
            timeout=60,
        ),
        record["width"],
        record["height"],
    )
    gray = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).convert("L").save(gray, format="PNG")
    _check_predictions(
        requests.post(
            f"{server.url}/invocations",
            data=gray.getvalue(),
            headers={"Content-Type": "application/x-image", **ALL},
            timeout=60,
        ),
        Image.open(io.BytesIO(jpeg)).width,
        Image.open(io.BytesIO(jpeg)).height,
    )


def test_json_base64_and_custom_attribute_threshold(server: Any, synthetic_data: Path) -> None:
    jpeg, record = _test_image(synthetic_data, 2)
    body = {"image": base64.b64encode(jpeg).decode(), "score_threshold": 0.0}
    everything = _check_predictions(
        requests.post(f"{server.url}/invocations", json=body, timeout=60),
        record["width"],
        record["height"],
    )
    assert everything
    strict = requests.post(
        f"{server.url}/invocations",
        json=body,
        headers={"X-Amzn-SageMaker-Custom-Attributes": "score_threshold=0.99"},
        timeout=60,
    )
    kept = _check_predictions(strict, record["width"], record["height"])
    assert strict.json()["model"]["score_threshold"] == 0.99
    assert all(p["score"] >= 0.99 for p in kept)
    default = requests.post(
        f"{server.url}/invocations", data=jpeg, headers={"Content-Type": "image/jpeg"}, timeout=60
    )
    assert default.json()["model"]["score_threshold"] == 0.3  # the training job's score_threshold
    assert default.json()["model"]["one_label_per_object"] is True  # and its one_label_per_object


def _big_body() -> bytes:
    return b"\x00" * (6 * 1024 * 1024 + 10)


@pytest.mark.parametrize(
    ("content_type", "body", "status", "words"),
    [
        ("text/csv", b"1,2,3", 415, "is not supported"),
        ("image/jpeg", b"", 400, "request body is empty"),
        ("image/jpeg", "TRUNCATED", 400, "truncated or damaged"),
        ("image/png", b"GIF89a not a png at all", 400, "not a JPEG or PNG image"),
        ("application/json", b'{"image": ', 400, "not valid JSON"),
        ("application/json", b'{"image": "***"}', 400, "not valid base64"),
        ("image/jpeg", "BIG", 413, "over the limit of 6 MB"),
    ],
)
def test_bad_requests_get_4xx_and_the_server_keeps_serving(
    server: Any, synthetic_data: Path, content_type: str, body: bytes | str, status: int, words: str
) -> None:
    if body == "TRUNCATED":
        jpeg, _ = _test_image(synthetic_data, 0)
        body = jpeg[: len(jpeg) // 2]
    elif body == "BIG":
        body = _big_body()
    reply = requests.post(
        f"{server.url}/invocations", data=body, headers={"Content-Type": content_type}, timeout=60
    )
    assert reply.status_code == status
    assert words in reply.json()["error"]
    assert requests.get(f"{server.url}/ping", timeout=10).status_code == 200


def test_decompression_bomb_is_refused(server: Any) -> None:
    bomb = io.BytesIO()
    Image.new("L", (8000, 6000)).save(bomb, format="PNG")  # 48 Mpixel in a few kB
    assert len(bomb.getvalue()) < 200_000
    reply = requests.post(
        f"{server.url}/invocations",
        data=bomb.getvalue(),
        headers={"Content-Type": "image/png"},
        timeout=60,
    )
    assert reply.status_code == 413
    assert "pixels, over the limit" in reply.json()["error"]
    assert requests.get(f"{server.url}/ping", timeout=10).status_code == 200


def test_execution_parameters_for_batch_transform(server: Any) -> None:
    reply = requests.get(f"{server.url}/execution-parameters", timeout=10)
    assert reply.json() == {
        "MaxConcurrentTransforms": 1,
        "BatchStrategy": "SINGLE_RECORD",
        "MaxPayloadInMB": 6,
    }


def test_serve_without_a_model_exits_with_one_sentence(tmp_path: Path, processes: Any) -> None:
    result = subprocess.run(
        [sys.executable, str(processes.programs / "serve")],
        env=processes.environ(SAGEMAKER_BASE_DIR=str(tmp_path), MASK_R_CNN_NGINX="0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "holds no metadata.json" in result.stderr


@pytest.mark.skipif(
    shutil.which("nginx") is None, reason="nginx is not installed (the image has it)"
)
def test_nginx_fronts_gunicorn_when_installed(
    trained_model: Any, tmp_path: Path, synthetic_data: Path, processes: Any
) -> None:
    running = processes.start_server(
        trained_model.base, tmp_path / "serve.log", MASK_R_CNN_NGINX="1"
    )
    try:
        assert "nginx+gunicorn" in running.log_path.read_text()
        jpeg, record = _test_image(synthetic_data, 0)
        reply = requests.post(
            f"{running.url}/invocations",
            data=jpeg,
            headers={"Content-Type": "image/jpeg", **ALL},
            timeout=60,
        )
        _check_predictions(reply, record["width"], record["height"])
        big = requests.post(
            f"{running.url}/invocations",
            data=_big_body(),
            headers={"Content-Type": "image/jpeg"},
            timeout=60,
        )
        assert big.status_code == 413 and "over the limit" in big.json()["error"]
        assert requests.get(f"{running.url}/nothing", timeout=10).status_code == 404
        assert requests.get(f"{running.url}/execution-parameters", timeout=10).status_code == 200
        # nginx's own refusals are the service's JSON, not nginx's HTML pages
        for raw, status in _NGINX_REFUSALS:
            answer = _raw_request(running.url, raw)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.split()[1] == str(status).encode(), answer[:200]
            assert b"Content-Type: application/json" in head, answer[:200]
            assert set(json.loads(body)) == {"error"}
    finally:
        assert processes.stop_server(running.process) == 0


_NGINX_REFUSALS = [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /ping HTTP/1.1\r\nBad Header: x\r\n\r\n", 400),
    (b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    (b"GET /ping HTTP/1.1\r\nHost: t\r\nX-A: " + b"a" * 20000 + b"\r\n\r\n", 400),
    (b"POST /invocations HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
]


def _raw_request(url: str, raw: bytes) -> bytes:
    import socket

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.slow
def test_sigterm_stops_server_and_workers(
    trained_model: Any, tmp_path: Path, processes: Any
) -> None:
    running = processes.start_server(trained_model.base, tmp_path / "serve.log")
    assert processes.stop_server(running.process) == 0
    log = running.log_path.read_text()
    assert "serve: signal 15, stopping" in log
    assert "Shutting down: Master" in log


@pytest.mark.slow
def test_serve_exits_when_gunicorn_dies(trained_model: Any, tmp_path: Path, processes: Any) -> None:
    import os
    import signal

    import psutil

    running = processes.start_server(trained_model.base, tmp_path / "serve.log")
    try:
        children = psutil.Process(running.process.pid).children()
        gunicorn = next(c for c in children if "gunicorn" in " ".join(c.cmdline()))
        workers = gunicorn.children()
        assert workers, "gunicorn has its worker"
        os.kill(gunicorn.pid, signal.SIGKILL)
        code = running.process.wait(timeout=60)
        assert code != 0
        assert "gunicorn exited with code" in running.log_path.read_text()
        _, alive = psutil.wait_procs(workers, timeout=30)
        assert not alive, "orphaned workers notice their master is gone and exit"
    finally:
        processes.stop_server(running.process)


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares `width` x `height` over 8 KiB of zlib-compressed zeros."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * (8 * 1024 * 1024), 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(("width", "height"), [(20_000, 20_000), (10_000, 10_000)])
def test_bombs_past_pillows_own_limits_are_413(server: Any, width: int, height: int) -> None:
    """Over 2x Pillow's MAX_IMAGE_PIXELS it raises, between 1x and 2x it warns: both are 413."""
    reply = requests.post(
        f"{server.url}/invocations",
        data=_png_declaring(width, height),
        headers={"Content-Type": "image/png"},
        timeout=60,
    )
    assert reply.status_code == 413, reply.text
    assert reply.json()["error"] == (
        f"the image declares {width * height} pixels, over the limit of 40000000 "
        "(MASK_R_CNN_MAX_IMAGE_PIXELS); send a smaller image."
    )
    assert requests.get(f"{server.url}/ping", timeout=10).status_code == 200


def _pieces(body: bytes, size: int = 256 * 1024) -> Any:
    """A generator body: requests sends it with `Transfer-Encoding: chunked`, no Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_chunked_bodies_over_the_limit_are_413_and_within_it_served(
    server: Any, synthetic_data: Path
) -> None:
    jpeg, record = _test_image(synthetic_data, 0)
    big = requests.post(
        f"{server.url}/invocations",
        data=_pieces(jpeg + bytes(6 * 1024 * 1024 + 1 - len(jpeg))),
        headers={"Content-Type": "image/jpeg"},
        timeout=60,
    )
    assert big.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in big.request.headers
    assert big.status_code == 413, big.text
    assert "over the limit of 6 MB (SAGEMAKER_MAX_PAYLOAD_IN_MB)" in big.json()["error"]
    small = requests.post(
        f"{server.url}/invocations",
        data=_pieces(jpeg, 1000),
        headers={"Content-Type": "image/jpeg", **ALL},
        timeout=60,
    )
    assert small.request.headers.get("Transfer-Encoding") == "chunked"
    _check_predictions(small, record["width"], record["height"])


@pytest.mark.parametrize(
    ("width", "height", "status"),
    [(2, 200, 400), (300, 1, 400), (2, 192, 200), (1, 96, 200), (1, 1, 200)],
)
def test_extreme_shapes_are_400_when_the_resize_would_give_0_px(
    server: Any, width: int, height: int, status: int
) -> None:
    """The served model has max_size 96: a side resized below 1 px cannot be predicted on."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, format="PNG")
    reply = requests.post(
        f"{server.url}/invocations",
        data=buffer.getvalue(),
        headers={"Content-Type": "image/png", **ALL},
        timeout=60,
    )
    if status == 200:
        _check_predictions(reply, width, height)
        return
    assert reply.status_code == 400, reply.text
    message = reply.json()["error"]
    assert message.startswith(f"the image is {width}x{height} pixels, too elongated")
    assert "the smallest aspect ratio it accepts is 1:96" in message
    assert requests.get(f"{server.url}/ping", timeout=10).status_code == 200
