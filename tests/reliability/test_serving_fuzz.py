"""Property-based fuzzing of `POST /invocations` on a live `serve` (gunicorn, 2 workers).

Every generated request is a client mistake or a valid request; the property is the same for
all: the answer is a 2xx or a 4xx with a one-line JSON `{"error": ...}`, never a 5xx, never a
dropped connection. After each family `/ping` must still answer 200, and at the end the server's
resident memory (serve + gunicorn master + workers, from /proc) must stay bounded.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from reliability_kit import LiveServer, Tally, examples

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AREA = "serving: bad input"
IMAGE_TYPES = ["image/jpeg", "image/png", "application/x-image"]
OTHER_TYPES = [
    "text/plain",
    "text/csv",
    "application/octet-stream",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "image/gif",
    "image/webp",
    "application/jsonl",
    "application/x-npy",
    "IMAGE/JPEG;;;",
    "image/",
    "/",
    "*/*",
]
SETTINGS = {
    "deadline": None,
    "database": None,
    "suppress_health_check": list(HealthCheck),
}
# Budgets: what the memory of the serving tree may grow by over the whole fuzzing session.
RSS_GROWTH_LIMIT_MIB = 400


def _picture(width: int, height: int, seed: int) -> Image.Image:
    import numpy as np

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    pixels[height // 4 : height // 2, width // 4 : width // 2] = (240, 40, 40)
    return Image.fromarray(pixels)


def _encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


VALID = {
    "jpeg": _encode(_picture(64, 48, 1), "JPEG", quality=85),
    "png": _encode(_picture(48, 64, 2), "PNG"),
    "gray-png": _encode(_picture(40, 40, 3).convert("L"), "PNG"),
    "rgba-png": _encode(_picture(40, 32, 4).convert("RGBA"), "PNG"),
    "palette-png": _encode(_picture(32, 40, 5).convert("P"), "PNG"),
    "progressive-jpeg": _encode(_picture(56, 56, 6), "JPEG", progressive=True),
    "cmyk-jpeg": _encode(_picture(40, 40, 7).convert("CMYK"), "JPEG"),
}
OTHER_FORMATS = {
    fmt: _encode(_picture(32, 32, 8), fmt) for fmt in ("GIF", "BMP", "TIFF", "WEBP", "PPM", "ICO")
}
# 8 MiB of zeros compress to ~8 KiB: the IDAT of a PNG bomb.
BOMB_IDAT = zlib.compress(b"\0" * (8 * 1024 * 1024), 9)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_size(width: int, height: int, color_type: int = 2, idat: bytes = BOMB_IDAT) -> bytes:
    """A PNG whose header declares `width` x `height` over a small zlib bomb of zeros."""
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def jpeg_with_size(width: int, height: int) -> bytes:
    """The valid JPEG with its SOF0 frame header patched to declare `width` x `height`."""
    data = bytearray(VALID["jpeg"])
    at = data.find(b"\xff\xc0")
    assert at > 0, "the sample JPEG has no baseline SOF0 marker"
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)


# ---------------------------------------------------------------------------------------------
# the oracle
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


@pytest.fixture(scope="module")
def memory(live_server: LiveServer, tally: Tally) -> Iterator[dict[str, float]]:
    """RSS of the serving tree before the first and after the last fuzzing test of the module."""
    figures = {"before_mib": live_server.rss_mib()}
    yield figures
    figures["after_mib"] = live_server.rss_mib()
    growth = figures["after_mib"] - figures["before_mib"]
    row = tally.row(AREA, "server RSS after all fuzzing (MiB)")
    row.notes.append(
        f"before={figures['before_mib']:.0f} after={figures['after_mib']:.0f} "
        f"growth={growth:.0f} limit={RSS_GROWTH_LIMIT_MIB}"
    )
    row.count(
        "bounded" if growth <= RSS_GROWTH_LIMIT_MIB else "grew", growth > RSS_GROWTH_LIMIT_MIB
    )


def send(
    http: requests.Session,
    server: LiveServer,
    body: Any,
    content_type: str | None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    path: str = "/invocations",
) -> tuple[int | None, str]:
    """Send one request; return (status, error text) with status None on a dropped connection."""
    all_headers = dict(headers or {})
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    try:
        reply = http.request(method, server.url + path, data=body, headers=all_headers, timeout=60)
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if reply.status_code >= 400:
        try:
            message = reply.json()["error"]
        except (ValueError, KeyError, TypeError):
            return reply.status_code, f"not a JSON error body: {reply.text[:200]!r}"
        if not isinstance(message, str) or "\n" in message or not message.strip():
            return reply.status_code, f"the error is not one sentence: {message!r}"
        return reply.status_code, message
    try:
        predictions = reply.json()["predictions"]
        assert isinstance(predictions, list)
    except (ValueError, KeyError, TypeError, AssertionError):
        return reply.status_code, f"a 2xx without predictions: {reply.text[:200]!r}"
    return reply.status_code, ""


def judge(
    tally: Tally,
    what: str,
    outcome: tuple[int | None, str],
    allowed: set[int],
    case: str,
) -> None:
    """Count the case and fail the example when the status is not allowed or the body is bad."""
    status, text = outcome
    bad_body = text.startswith(("not a JSON", "the error is", "a 2xx without"))
    broke = status is None or status not in allowed or bad_body
    tally.row(AREA, what).count(str(status) if status is not None else "dropped", broke)
    if broke:
        tally.row(AREA, what).notes.append(f"{case}: {status} {text}"[:300])
    assert not broke, f"{case}: answered {status} ({text}); allowed {sorted(allowed)}"


def still_pings(server: LiveServer, tally: Tally, what: str) -> None:
    status = server.ping()
    tally.row(AREA, "/ping after each family").count(str(status), status != 200)
    assert status == 200, f"/ping answered {status} after {what}"


CLIENT_ERRORS = {400, 404, 405, 406, 411, 413, 415}
OK_OR_CLIENT_ERROR = CLIENT_ERRORS | {200}


# ---------------------------------------------------------------------------------------------
# families
# ---------------------------------------------------------------------------------------------


def test_random_bytes_with_any_content_type(
    live_server: LiveServer, session: requests.Session, tally: Tally, memory: dict[str, float]
) -> None:
    what = "random bytes, any content type"

    @settings(max_examples=examples(700), **SETTINGS)
    @given(
        body=st.binary(max_size=4096),
        content_type=st.one_of(
            st.none(),
            st.sampled_from([*IMAGE_TYPES, "application/json", *OTHER_TYPES]),
            st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
        ),
    )
    def case(body: bytes, content_type: str | None) -> None:
        outcome = send(session, live_server, body, content_type)
        judge(tally, what, outcome, CLIENT_ERRORS, f"{len(body)} bytes as {content_type!r}")

    case()
    still_pings(live_server, tally, what)


@st.composite
def damaged_images(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(VALID)))
    data = bytearray(VALID[name])
    how = draw(st.sampled_from(["truncate", "flip", "splice", "zero", "header-only", "double"]))
    if how == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= draw(st.integers(1, 255))
    elif how == "splice":
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=64))
    elif how == "zero":
        start = draw(st.integers(0, len(data) - 1))
        end = draw(st.integers(start, min(len(data), start + 256)))
        data[start:end] = bytes(end - start)
    elif how == "header-only":
        data = data[: draw(st.integers(8, 64))]
    else:
        data = data + data
    return f"{how} {name}", bytes(data)


def test_truncated_and_corrupt_jpeg_png(
    live_server: LiveServer, session: requests.Session, tally: Tally, memory: dict[str, float]
) -> None:
    what = "truncated/corrupt JPEG and PNG"

    @settings(max_examples=examples(500), **SETTINGS)
    @given(image=damaged_images(), content_type=st.sampled_from(IMAGE_TYPES))
    def case(image: tuple[str, bytes], content_type: str) -> None:
        name, body = image
        outcome = send(session, live_server, body, content_type)
        judge(tally, what, outcome, OK_OR_CLIENT_ERROR, f"{name} ({len(body)} bytes)")

    case()
    still_pings(live_server, tally, what)


def test_other_image_formats_are_refused(
    live_server: LiveServer, session: requests.Session, tally: Tally, memory: dict[str, float]
) -> None:
    what = "GIF/BMP/TIFF/WebP/PPM/ICO sent as JPEG or PNG"
    for fmt, body in OTHER_FORMATS.items():
        for content_type in IMAGE_TYPES:
            outcome = send(session, live_server, body, content_type)
            judge(tally, what, outcome, {400}, f"{fmt} as {content_type}")
    still_pings(live_server, tally, what)


def test_decompression_bombs_with_huge_declared_dimensions(
    live_server: LiveServer, session: requests.Session, tally: Tally, memory: dict[str, float]
) -> None:
    what = "decompression bombs (declared dimensions up to 2^31-1)"
    limit = live_server.max_image_pixels
    side = st.one_of(
        st.integers(1, 2**31 - 1),
        st.integers(1, 70_000),
        st.sampled_from([1, 999, 1000, 1001, 4096, 20_000, 65_535, 100_000, 2**31 - 1]),
    )

    @settings(max_examples=examples(400), **SETTINGS)
    @given(
        kind=st.sampled_from(["png", "png-gray", "png-rgba", "jpeg"]),
        width=side,
        height=side,
    )
    def case(kind: str, width: int, height: int) -> None:
        if kind == "jpeg":
            width, height = min(width, 65_535), min(height, 65_535)
            body, content_type = jpeg_with_size(width, height), "image/jpeg"
        else:
            color = {"png": 2, "png-gray": 0, "png-rgba": 6}[kind]
            body, content_type = png_with_size(width, height, color), "image/png"
        allowed = {413} if width * height > limit else {200, 400}
        outcome = send(session, live_server, body, content_type)
        judge(tally, what, outcome, allowed, f"{kind} declaring {width}x{height}")

    case()
    still_pings(live_server, tally, what)


def test_valid_images_of_extreme_shapes(
    live_server: LiveServer, session: requests.Session, tally: Tally, memory: dict[str, float]
) -> None:
    """Decodable images a model cannot resize (e.g. 1 x 300 px) are a client error, not a 500."""
    what = "valid images of extreme shapes (1-4 px by 1-900 px)"

    @settings(max_examples=examples(60), **SETTINGS)
    @given(
        short=st.integers(1, 4),
        long=st.integers(1, 900),
        tall=st.booleans(),
        fmt=st.sampled_from(["PNG", "JPEG"]),
    )
    def case(short: int, long: int, tall: bool, fmt: str) -> None:
        size = (short, long) if tall else (long, short)
        body = _encode(_picture(*size, seed=short * 1000 + long), fmt)
        outcome = send(session, live_server, body, f"image/{fmt.lower()}")
        judge(tally, what, outcome, {200, 400, 413}, f"{fmt} {size[0]}x{size[1]}")

    case()
    still_pings(live_server, tally, what)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def json_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(
        st.sampled_from(
            ["text", "value", "bad-base64", "base64-garbage", "bad-threshold", "truncated-json"]
        )
    )
    image = base64.b64encode(VALID["png"]).decode()
    if kind == "text":
        return kind, draw(st.text(max_size=300)).encode("utf-8", "surrogatepass")
    if kind == "value":
        value = draw(JSON_VALUES)
        if isinstance(value, dict) and draw(st.booleans()):
            value["image"] = draw(JSON_VALUES)
        return kind, json.dumps(value).encode()
    if kind == "bad-base64":
        text = draw(st.text(max_size=200).filter(lambda s: s.strip() != ""))
        return kind, json.dumps({"image": text}).encode()
    if kind == "base64-garbage":
        return kind, json.dumps(
            {"image": base64.b64encode(draw(st.binary(max_size=600))).decode()}
        ).encode()
    if kind == "bad-threshold":
        threshold = draw(
            st.one_of(
                st.floats(),
                st.integers(),
                st.text(max_size=10),
                st.booleans(),
                st.lists(st.integers(), max_size=2),
                st.just(float("nan")),
            )
        )
        text = json.dumps({"image": image, "score_threshold": threshold})
        return kind, text.encode()
    text = json.dumps({"image": image, "score_threshold": 0.5})
    return kind, text[: draw(st.integers(0, len(text) - 1))].encode()


def test_malformed_json_and_base64(
    live_server: LiveServer, session: requests.Session, tally: Tally, memory: dict[str, float]
) -> None:
    what = "malformed JSON, base64 and thresholds"

    @settings(max_examples=examples(600), **SETTINGS)
    @given(
        body=json_bodies(), charset=st.sampled_from(["", "; charset=utf-8", "; charset=latin-1"])
    )
    def case(body: tuple[str, bytes], charset: str) -> None:
        kind, data = body
        outcome = send(session, live_server, data, "application/json" + charset)
        allowed = OK_OR_CLIENT_ERROR if kind == "bad-threshold" else CLIENT_ERRORS
        if kind == "value":
            allowed = OK_OR_CLIENT_ERROR  # a JSON value holding a valid "image" is a fair request
        judge(tally, what, outcome, allowed, f"{kind}: {data[:80]!r}")

    case()
    still_pings(live_server, tally, what)


def test_oversized_bodies(
    live_server: LiveServer, session: requests.Session, tally: Tally, memory: dict[str, float]
) -> None:
    what = "oversized bodies (with and without Content-Length)"
    limit = live_server.max_payload_bytes

    @settings(max_examples=examples(60), **SETTINGS)
    @given(
        extra=st.integers(1, 2 * limit),
        chunked=st.booleans(),
        content_type=st.sampled_from([*IMAGE_TYPES, "application/json"]),
    )
    def case(extra: int, chunked: bool, content_type: str) -> None:
        payload = VALID["png"] + bytes(limit + extra - len(VALID["png"]))

        def pieces() -> Iterator[bytes]:
            for start in range(0, len(payload), 256 * 1024):
                yield payload[start : start + 256 * 1024]

        body: Any = pieces() if chunked else payload
        outcome = send(session, live_server, body, content_type)
        mode = "chunked" if chunked else "Content-Length"
        judge(tally, what, outcome, {413}, f"{len(payload)} bytes, {mode}")

    case()
    still_pings(live_server, tally, what)


HEADER_TEXT = st.text(
    st.characters(min_codepoint=32, max_codepoint=255, blacklist_characters="\x7f"), max_size=120
).map(str.strip)


@st.composite
def custom_attributes(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["random", "threshold", "many", "long"]))
    if kind == "random":
        return draw(HEADER_TEXT)
    if kind == "threshold":
        value = draw(
            st.one_of(
                st.floats().map(repr),
                st.integers().map(str),
                HEADER_TEXT,
                st.sampled_from(["", "nan", "inf", "-0", "1e-400", "0x1", "1_0", "½"]),
            )
        )
        sep = draw(st.sampled_from(["=", " = ", "==", ":"]))
        return f"score_threshold{sep}{value}".strip()
    if kind == "many":
        parts = draw(st.lists(HEADER_TEXT, max_size=20))
        return draw(st.sampled_from([",", ";", ", "])).join(parts).strip()
    return "x=" + "y" * draw(st.integers(1000, 7000))


def test_odd_custom_attribute_and_accept_headers(
    live_server: LiveServer, session: requests.Session, tally: Tally, memory: dict[str, float]
) -> None:
    what = "odd X-Amzn-SageMaker-Custom-Attributes and Accept headers"
    tiny = _encode(_picture(16, 16, 9), "PNG")

    @settings(max_examples=examples(250), **SETTINGS)
    @given(
        attributes=custom_attributes(),
        accept=st.one_of(
            st.none(),
            st.sampled_from(
                ["*/*", "application/json", "text/csv", "application/*", "image/png", ";;", "*"]
            ),
            HEADER_TEXT,
        ),
    )
    def case(attributes: str, accept: str | None) -> None:
        headers = {"X-Amzn-SageMaker-Custom-Attributes": attributes}
        if accept is not None:
            headers["Accept"] = accept
        outcome = send(session, live_server, tiny, "image/png", headers)
        judge(tally, what, outcome, {200, 400, 406, 431}, f"{attributes[:80]!r} accept={accept!r}")

    case()
    still_pings(live_server, tally, what)


def test_wrong_methods_and_paths(
    live_server: LiveServer, session: requests.Session, tally: Tally, memory: dict[str, float]
) -> None:
    what = "wrong methods and paths"

    @settings(max_examples=examples(200), **SETTINGS)
    @given(
        method=st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "POST", "HEAD"]),
        path=st.one_of(
            st.sampled_from(
                [
                    "/invocations",
                    "/ping",
                    "/execution-parameters",
                    "/",
                    "/invocations/",
                    "/../etc/passwd",
                    "/%00",
                    "/ping?x=1",
                ]
            ),
            st.text(
                st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="#?"),
                max_size=30,
            ).map(lambda s: "/" + s),
        ),
    )
    def case(method: str, path: str) -> None:
        status, text = send(session, live_server, b"", None, method=method, path=path)
        if method in ("GET", "HEAD") and path in ("/ping", "/execution-parameters", "/ping?x=1"):
            allowed = {200}
        elif (method, path) == ("OPTIONS", "/invocations") or method == "OPTIONS":
            allowed = {200, 404, 405}
        else:
            allowed = CLIENT_ERRORS
        if status is not None and (status < 400 or method == "HEAD"):
            text = ""  # /ping is no prediction, and a HEAD answer has no body by definition
        judge(tally, what, (status, text), allowed, f"{method} {path}")

    case()
    still_pings(live_server, tally, what)


def test_valid_requests_still_answer_with_predictions(
    live_server: LiveServer, session: requests.Session, tally: Tally, memory: dict[str, float]
) -> None:
    """The control group: every valid encoding answers 200 with predictions after the fuzzing."""
    what = "valid images (control)"
    for name, body in VALID.items():
        content_type = "image/jpeg" if "jpeg" in name else "image/png"
        judge(tally, what, send(session, live_server, body, content_type), {200}, name)
        as_json = json.dumps({"image": base64.b64encode(body).decode(), "score_threshold": 0.1})
        judge(tally, what, send(session, live_server, as_json, "application/json"), {200}, name)
    still_pings(live_server, tally, what)
