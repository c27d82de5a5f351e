from __future__ import annotations

import json

import pytest
from gunicorn.http import errors
from mask_r_cnn.http_worker import error_bytes, error_response


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (errors.LimitRequestLine(10000, 4094), 414),
        (errors.LimitRequestHeaders("too many"), 431),
        (errors.ExpectationFailed("200-ok"), 417),
        (errors.UnsupportedTransferCoding("gzip"), 501),
        (errors.InvalidRequestLine("GARBAGE"), 400),
        (errors.InvalidHeaderName("Bad Header"), 400),
        (errors.InvalidChunkSize(b"ZZ"), 400),
        (errors.InvalidResponseHeader("X-A", "a\nb"), 500),
        (RuntimeError("boom"), 500),
    ],
)
def test_server_layer_errors_map_to_a_status_and_one_sentence(exc: Exception, status: int) -> None:
    got, reason, sentence = error_response(exc)
    assert got == status
    assert "\n" not in sentence and sentence.endswith(".")
    response = error_bytes(got, reason, sentence)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} {reason}\r\n".encode())
    assert b"Content-Type: application/json" in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert json.loads(body) == {"error": sentence}
