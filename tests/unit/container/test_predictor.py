from __future__ import annotations

import base64
import io
import json
import shutil
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from flask.testing import FlaskClient
from mask_r_cnn.errors import RequestError, UserInputError
from mask_r_cnn.predictor import (
    ModelLoadError,
    Predictor,
    check_resizable,
    create_app,
    decode_image,
    parse_json_body,
    resized_size,
    threshold_from_attributes,
)
from mask_r_cnn.settings import ServeSettings
from PIL import Image
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request


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


def test_all_torch_work_runs_on_the_one_inference_thread(tiny_model_dir: Path) -> None:
    # libgomp keeps one OpenMP team per thread that runs torch kernels; more teams than CPUs
    # stop spinning and every forward slows by half, so requests from any thread of the HTTP
    # server's pool must run the model on one thread (the one that loaded it).
    loaded = Predictor(tiny_model_dir, threads=1)
    try:
        forwards: list[str] = []
        loaded.model.register_forward_pre_hook(
            lambda *_: forwards.append(threading.current_thread().name)
        )
        callers = [threading.Thread(target=loaded.warm_up) for _ in range(3)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
        loaded.predict(_picture(), 0.0)
        assert len(forwards) == 4 and len(set(forwards)) == 1
        assert (
            forwards[0].startswith("inference") and forwards[0] != threading.current_thread().name
        )
        assert loaded.run(threading.current_thread) is loaded.run(threading.current_thread)
        assert loaded.run(torch.get_num_threads) == 1  # set on that thread: OpenMP's is per thread
    finally:
        loaded.close()


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
    assert doc["model"]["backbone"] == "resnet18_fpn"
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


def test_one_label_per_object_keeps_the_best_label_of_overlapping_detections(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_label = tmp_path / "model"
    shutil.copytree(tiny_model_dir, one_label)
    metadata = json.loads((one_label / "metadata.json").read_text())
    (one_label / "metadata.json").write_text(json.dumps({**metadata, "one_label_per_object": True}))
    # What torchvision's per-class NMS returns for a square the classifier is unsure of (boxes 0
    # and 1, IoU 0.8) next to a circle (box 2, disjoint), best first.
    boxes = torch.tensor([[10.0, 10, 30, 30], [11, 11, 31, 29], [40, 40, 50, 50]])
    output = {
        "boxes": boxes,
        "scores": torch.tensor([0.9, 0.6, 0.4]),
        "labels": torch.tensor([2, 3, 1]),
        "masks": torch.zeros(3, 1, 56, 72),
    }
    answers = {}
    for name, model_dir in (("every", tiny_model_dir), ("one", one_label)):
        predictor = Predictor(model_dir)
        monkeypatch.setattr(predictor.model, "forward", lambda images: [output])
        answers[name] = predictor.predict(_picture(), 0.3)
    assert [p["category"] for p in answers["every"]] == ["square", "triangle", "circle"]
    assert [(p["category"], p["score"]) for p in answers["one"]] == [
        ("square", 0.9),
        ("circle", 0.4),
    ]
    assert Predictor(one_label).info["one_label_per_object"] is True


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


# --- decompression bombs beyond Pillow's own limits --------------------------------------------


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares `width` x `height` over a few bytes of zlib zeros."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 4096, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (20_000, 20_000),  # over 2 x Image.MAX_IMAGE_PIXELS: Image.open raises
        (10_000, 10_000),  # between 1 and 2 x Image.MAX_IMAGE_PIXELS: Image.open warns
        (2**31 - 1, 2**31 - 1),
    ],
)
def test_bombs_past_pillows_limits_are_413_naming_size_limit_and_setting(
    width: int, height: int
) -> None:
    assert width * height > Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the DecompressionBombWarning must not leak either
        with pytest.raises(RequestError) as info:
            decode_image(_png_declaring(width, height), 1_000_000)
    assert info.value.status == 413
    message = str(info.value)
    assert f"declares {width * height} pixels" in message
    assert "over the limit of 1000000 (MASK_R_CNN_MAX_IMAGE_PIXELS)" in message
    assert "\n" not in message


def test_bomb_answers_413_json_and_the_app_keeps_answering(client: FlaskClient) -> None:
    reply = client.post(
        "/invocations", data=_png_declaring(20_000, 20_000), content_type="image/png"
    )
    assert reply.status_code == 413
    assert "declares 400000000 pixels, over the limit of 100000" in reply.json["error"]
    assert client.get("/ping").status_code == 200


def test_max_image_pixels_setting_cannot_exceed_pillows_limit() -> None:
    limit = Image.MAX_IMAGE_PIXELS
    assert limit is not None
    at = ServeSettings.from_environ({"MASK_R_CNN_MAX_IMAGE_PIXELS": str(limit)})
    assert at.max_image_pixels == limit
    with pytest.raises(
        UserInputError, match=rf"={limit + 1} is over Pillow's .* at most {limit}\."
    ):
        ServeSettings.from_environ({"MASK_R_CNN_MAX_IMAGE_PIXELS": str(limit + 1)})


# --- bodies without Content-Length (chunked) -----------------------------------------------------


def _post_chunked(client: FlaskClient, body: bytes, content_type: str = "image/png") -> Any:
    """POST `body` as gunicorn presents a chunked request: no CONTENT_LENGTH, terminated input."""
    environ = EnvironBuilder(
        method="POST", path="/invocations", input_stream=io.BytesIO(body), content_type=content_type
    ).get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    return client.open(Request(environ))


def test_chunked_body_over_the_limit_is_413_not_truncated(client: FlaskClient) -> None:
    limit = 1024 * 1024
    png = _encode(_picture(), "PNG")
    for size in (limit + 1, 3 * limit):
        reply = _post_chunked(client, png + bytes(size - len(png)))
        # werkzeug alone reads the first MB and stops: the PNG would decode and answer 200
        assert reply.status_code == 413, reply.json
        assert reply.json["error"] == (
            "the request body is over the limit of 1 MB (SAGEMAKER_MAX_PAYLOAD_IN_MB); "
            "send a smaller image."
        )
    assert client.get("/ping").status_code == 200


def test_chunked_body_within_the_limit_is_served(client: FlaskClient) -> None:
    png = _encode(_picture(), "PNG")
    reply = _post_chunked(client, png)
    assert reply.status_code == 200, reply.json
    assert all(p["mask"]["size"] == [56, 72] for p in reply.json["predictions"])
    # exactly at the limit is not over it: it reaches the decoder (trailing bytes after IEND)
    at_limit = _post_chunked(client, png + bytes(1024 * 1024 - len(png)))
    assert at_limit.status_code == 200, at_limit.json


# --- images the model's resize would shrink to 0 px -----------------------------------------------


def test_resized_size_matches_the_models_own_transform(predictor: Predictor) -> None:
    spec = predictor.spec
    shapes = [(w, h) for w in (1, 2, 3, 4, 5, 64, 96, 500) for h in (1, 2, 95, 96, 97, 191, 192)]
    shapes += [(1, 900), (4, 384), (4, 385), (3, 288), (7000, 5), (2, 2000)]
    for width, height in shapes:
        expected = resized_size(width, height, spec.min_size, spec.max_size)
        assert max(expected) <= spec.max_size, "the long side is capped at max_size"
        tensor = torch.zeros(3, height, width)
        if min(expected) >= 1:
            resized, _ = predictor.model.transform.resize(tensor, None)
            assert tuple(resized.shape[-2:]) == (expected[1], expected[0]), (width, height)
        else:
            with pytest.raises(RuntimeError):
                predictor.model.transform.resize(tensor, None)
            with pytest.raises(RequestError) as info:
                check_resizable(width, height, spec.min_size, spec.max_size)
            assert info.value.status == 400


def test_small_images_are_scaled_up_to_min_size_without_passing_max_size() -> None:
    assert resized_size(1, 1, 64, 96) == (64, 64)
    assert resized_size(1, 2, 64, 96) == (48, 96)  # min_size would give 64x128: capped
    assert resized_size(2, 192, 64, 96) == (1, 96)
    assert resized_size(2, 200, 64, 96) == (0, 96)  # round() would say 1 px; the resize floors


@pytest.mark.parametrize(("width", "height"), [(1, 200), (200, 1), (2, 200), (4, 900)])
def test_too_elongated_images_are_400_naming_size_and_ratio(
    client: FlaskClient, width: int, height: int
) -> None:
    body = _encode(_picture(width, height), "PNG")
    reply = client.post("/invocations", data=body, content_type="image/png")
    assert reply.status_code == 400, reply.json
    message = reply.json["error"]
    assert f"the image is {width}x{height} pixels, too elongated" in message
    assert "the smallest aspect ratio it accepts is 1:96" in message
    assert "\n" not in message
    assert client.get("/ping").status_code == 200


@pytest.mark.parametrize(("width", "height"), [(1, 96), (96, 1), (2, 192), (1, 1), (4, 384)])
def test_elongated_images_the_model_can_resize_are_served(
    client: FlaskClient, width: int, height: int
) -> None:
    body = _encode(_picture(width, height), "PNG")
    reply = client.post("/invocations", data=body, content_type="image/png")
    assert reply.status_code == 200, reply.json
    assert all(p["mask"]["size"] == [height, width] for p in reply.json["predictions"])


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"image": "aGk=", "score_threshold": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b'{"image": "aGk=", "score_threshold": 1' + b"0" * 400 + b"}", "score_threshold=1000"),
    ],
)
def test_json_that_crashes_parsers_is_a_400(body: bytes, pattern: str) -> None:
    with pytest.raises(RequestError, match=pattern) as info:
        parse_json_body(body)
    assert info.value.status == 400
    assert len(str(info.value)) < 400


def test_double_slash_paths_are_json_not_an_html_redirect(client: FlaskClient) -> None:
    for path in ("//ping", "/ping//", "//invocations"):
        reply = client.get(path)
        assert reply.status_code == 404, (path, reply.status_code)
        assert reply.is_json and "error" in reply.get_json()
