from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from flask.testing import FlaskClient
from mask_r_cnn.errors import RequestError
from mask_r_cnn.predictor import (
    ModelLoadError,
    Predictor,
    create_app,
    decode_image,
    parse_json_body,
    threshold_from_attributes,
)
from mask_r_cnn.settings import ServeSettings
from PIL import Image


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _picture(width: int = 72, height: int = 56, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    pixels[10:40, 10:50] = (250, 30, 30)
    return Image.fromarray(pixels).convert(mode)


@pytest.fixture(scope="module")
def predictor(tiny_model_dir: Path) -> Predictor:
    loaded = Predictor(tiny_model_dir)
    loaded.warm_up()
    return loaded


@pytest.fixture
def client(predictor: Predictor, tiny_model_dir: Path) -> Iterator[FlaskClient]:
    settings = ServeSettings(
        model_dir=tiny_model_dir, workers=3, max_payload_mb=1, max_image_pixels=100_000
    )
    yield create_app(settings, predictor).test_client()


def test_ping_reflects_the_model_state(tiny_model_dir: Path) -> None:
    fresh = Predictor(tiny_model_dir)
    app = create_app(ServeSettings(model_dir=tiny_model_dir), fresh)
    assert app.test_client().get("/ping").status_code == 503
    fresh.warm_up()
    assert app.test_client().get("/ping").status_code == 200


def test_missing_model_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"does not hold metadata\.json and model\.pth"):
        Predictor(tmp_path)


@pytest.mark.parametrize(
    ("content_type", "fmt", "mode"),
    [
        ("image/jpeg", "JPEG", "RGB"),
        ("image/png", "PNG", "RGB"),
        ("application/x-image", "PNG", "L"),
        ("image/png", "PNG", "RGBA"),
        ("image/jpeg; charset=binary", "JPEG", "L"),
    ],
)
def test_images_are_answered_in_original_coordinates(
    client: FlaskClient, content_type: str, fmt: str, mode: str
) -> None:
    body = _encode(_picture(mode=mode), fmt)
    reply = client.post(
        "/invocations",
        data=body,
        content_type=content_type,
        headers={"X-Amzn-SageMaker-Custom-Attributes": "score_threshold=0"},
    )
    assert reply.status_code == 200, reply.json
    assert reply.mimetype == "application/json"
    doc = reply.json
    assert doc["model"]["backbone"] == "mobilenet_v3_large_fpn"
    assert doc["model"]["source_commit"] == "abc1234"
    assert doc["model"]["score_threshold"] == 0.0
    predictions = doc["predictions"]
    assert predictions, "an untrained model scores every box; threshold 0 keeps them"
    scores = [p["score"] for p in predictions]
    assert scores == sorted(scores, reverse=True)
    for p in predictions:
        assert (p["label"], p["category"]) in {(1, "circle"), (2, "square"), (7, "triangle")}
        assert p["mask"]["size"] == [56, 72]
        x1, y1, x2, y2 = p["box"]
        assert 0 <= x1 <= x2 <= 72 and 0 <= y1 <= y2 <= 56


def test_json_body_with_threshold_and_header_override(client: FlaskClient) -> None:
    image = base64.b64encode(_encode(_picture(), "PNG")).decode()
    everything = client.post("/invocations", json={"image": image, "score_threshold": 0.0})
    assert everything.status_code == 200
    scores = [p["score"] for p in everything.json["predictions"]]
    cut = sorted(scores)[len(scores) // 2]
    some = client.post("/invocations", json={"image": image, "score_threshold": cut})
    assert some.json["model"]["score_threshold"] == cut
    assert all(p["score"] >= cut for p in some.json["predictions"])
    assert 0 < len(some.json["predictions"]) <= len(scores)
    header = client.post(
        "/invocations",
        json={"image": image, "score_threshold": 0.0},
        headers={"X-Amzn-SageMaker-Custom-Attributes": "trace=1, score_threshold=1.0"},
    )
    assert header.json["model"]["score_threshold"] == 1.0
    assert all(p["score"] >= 1.0 for p in header.json["predictions"])


def test_default_threshold_comes_from_the_model(client: FlaskClient) -> None:
    reply = client.post("/invocations", data=_encode(_picture(), "PNG"), content_type="image/png")
    assert reply.json["model"]["score_threshold"] == 0.5


def _truncated() -> bytes:
    data = _encode(_picture(), "JPEG")
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("content_type", "body", "status", "words"),
    [
        ("text/csv", b"1,2", 415, "Content-Type 'text/csv' is not supported"),
        (None, b"abc", 415, "Content-Type 'none' is not supported"),
        ("image/jpeg", b"", 400, "the request body is empty"),
        ("image/jpeg", b"\x00" * 100, 400, "not a JPEG or PNG image"),
        ("image/jpeg", _truncated(), 400, "truncated or damaged"),
        ("application/json", b"{", 400, "not valid JSON"),
        ("application/json", b"[1]", 400, 'needs an "image" field'),
        ("application/json", b'{"image": "@@@"}', 400, "not valid base64"),
        ("application/json", b'{"image": "aGVsbG8="}', 400, "not a JPEG or PNG image"),
        (
            "application/json",
            b'{"image": "", "score_threshold": 0.5}',
            400,
            "request body is empty",
        ),
        ("image/png", b"\x00" * (1024 * 1024 + 1), 413, "over the limit of 1 MB"),
        (
            "image/png",
            _encode(_picture(400, 300), "PNG"),
            413,
            "120000 pixels, over the limit of 100000",
        ),
    ],
)
def test_bad_requests_get_4xx_json_and_the_server_keeps_answering(
    client: FlaskClient, content_type: str | None, body: bytes, status: int, words: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    reply = client.post("/invocations", data=body, headers=headers)
    assert reply.status_code == status
    assert reply.mimetype == "application/json"
    assert words in reply.json["error"]
    assert "\n" not in reply.json["error"]
    assert client.get("/ping").status_code == 200


@pytest.mark.parametrize(
    ("headers", "json_body", "words"),
    [
        (
            {"X-Amzn-SageMaker-Custom-Attributes": "score_threshold=high"},
            None,
            "not a number from 0 to 1",
        ),
        ({}, {"score_threshold": 7}, "JSON score_threshold=7"),
        ({"Accept": "text/csv"}, None, "Accept 'text/csv' cannot be met"),
    ],
)
def test_bad_thresholds_and_accept(
    client: FlaskClient, headers: dict[str, str], json_body: dict[str, object] | None, words: str
) -> None:
    image = base64.b64encode(_encode(_picture(), "PNG")).decode()
    reply = client.post("/invocations", json={"image": image, **(json_body or {})}, headers=headers)
    assert reply.status_code in (400, 406)
    assert words in reply.json["error"]


def test_execution_parameters_and_unknown_paths(client: FlaskClient) -> None:
    reply = client.get("/execution-parameters")
    assert reply.json == {
        "MaxConcurrentTransforms": 3,
        "BatchStrategy": "SINGLE_RECORD",
        "MaxPayloadInMB": 1,
    }
    missing = client.get("/nothing")
    assert missing.status_code == 404 and "use GET /ping" in missing.json["error"]
    assert client.get("/invocations").status_code == 405


def test_parsers_on_bytes() -> None:
    assert threshold_from_attributes(None) is None
    assert threshold_from_attributes("a=b;score_threshold=0.25") == 0.25
    image, threshold = parse_json_body(b'{"image": "aGk=", "score_threshold": 0.1}')
    assert (image, threshold) == (b"hi", 0.1)
    with pytest.raises(RequestError) as info:
        decode_image(b"", 10)
    assert info.value.status == 400
    decoded = decode_image(_encode(_picture(mode="L"), "PNG"), 10_000)
    assert decoded.size == (72, 56)


def test_camera_mpo_jpegs_are_accepted() -> None:
    buffer = io.BytesIO()
    _picture().save(buffer, format="MPO", save_all=True, append_images=[_picture(mode="RGB")])
    image = decode_image(buffer.getvalue(), 10_000)
    assert image.format == "MPO" and image.size == (72, 56)
