from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mask_r_cnn.errors import UserInputError
from mask_r_cnn.serve import gunicorn_command, render_nginx_conf
from mask_r_cnn.settings import ServeSettings


def test_settings_from_environ_defaults_and_overrides(tmp_path: Path) -> None:
    default = ServeSettings.from_environ({})
    assert default.model_dir == Path("/opt/ml/model")
    assert (default.host, default.port, default.timeout, default.max_payload_mb) == (
        "0.0.0.0",
        8080,
        60,
        6,
    )
    assert default.workers >= 1 and default.threads >= 1 and default.use_nginx
    custom = ServeSettings.from_environ(
        {
            "SAGEMAKER_BASE_DIR": str(tmp_path),
            "SAGEMAKER_BIND_TO_PORT": "9090",
            "SAGEMAKER_BIND_TO_HOST": "127.0.0.1",
            "MODEL_SERVER_WORKERS": "3",
            "MODEL_SERVER_TIMEOUT": "120",
            "MODEL_SERVER_THREADS": "2",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": "10",
            "MASK_R_CNN_NGINX": "0",
        }
    )
    assert custom.model_dir == tmp_path / "model"
    assert (custom.port, custom.host, custom.workers, custom.timeout, custom.threads) == (
        9090,
        "127.0.0.1",
        3,
        120,
        2,
    )
    assert custom.max_payload_bytes == 10 * 1024 * 1024
    assert not custom.use_nginx


@pytest.mark.parametrize(
    "name", ["MODEL_SERVER_WORKERS", "MODEL_SERVER_TIMEOUT", "SAGEMAKER_MAX_PAYLOAD_IN_MB"]
)
def test_bad_settings_are_one_sentence(name: str) -> None:
    with pytest.raises(UserInputError, match=rf"{name}='many' is not a whole number"):
        ServeSettings.from_environ({name: "many"})


def test_nginx_conf_honours_port_body_limit_and_timeouts(tmp_path: Path) -> None:
    settings = ServeSettings(model_dir=tmp_path, port=18080, timeout=90, max_payload_mb=6)
    text = render_nginx_conf(settings, tmp_path / "g.sock", tmp_path)
    assert "{{" not in text
    assert "listen 0.0.0.0:18080 deferred;" in text
    body = int(re.search(r"client_max_body_size (\d+);", text).group(1))  # type: ignore[union-attr]
    assert body == 6 * 1024 * 1024  # SageMaker's real-time limit, not the sample's 5m
    proxy = int(re.search(r"proxy_read_timeout (\d+)s;", text).group(1))  # type: ignore[union-attr]
    assert proxy > settings.timeout
    assert f"server unix:{tmp_path / 'g.sock'};" in text
    assert "execution-parameters" in text


def test_gunicorn_command_uses_the_factory_and_settings(tmp_path: Path) -> None:
    settings = ServeSettings(model_dir=tmp_path, workers=4, timeout=33)
    command = gunicorn_command(settings, "127.0.0.1:1234")
    assert command[-1] == "mask_r_cnn.wsgi:application()"
    joined = " ".join(command)
    assert (
        "--workers 4" in joined and "--timeout 33" in joined and "--bind 127.0.0.1:1234" in joined
    )


def test_gunicorn_runs_threaded_workers_that_answer_errors_in_json(tmp_path: Path) -> None:
    joined = " ".join(gunicorn_command(ServeSettings(model_dir=tmp_path), "127.0.0.1:1"))
    assert "--worker-class mask_r_cnn.http_worker.JsonThreadWorker" in joined
    assert "--threads 8" in joined
    assert "--keep-alive 0" in joined  # a refused body's connection is never reused


def test_nginx_answers_its_own_refusals_in_json(tmp_path: Path) -> None:
    text = render_nginx_conf(ServeSettings(model_dir=tmp_path), tmp_path / "g.sock", tmp_path)
    pages = re.findall(r"error_page ([\d ]+) (@\w+|/\.errors/\d+);", text)
    codes = {int(code) for found, _ in pages for code in found.split()}
    assert {400, 411, 413, 414, 494, 501, 502, 503, 504, 505} <= codes
    for _, target in pages:
        opening = f"location {target} {{" if target[0] == "@" else f"location = {target} {{"
        block = text[text.index(opening) :].split("\n    }", 1)[0]
        assert "default_type application/json;" in block
        status, body = re.search(r"return (\d+) '(.*)';", block).groups()  # type: ignore[union-attr]
        assert 400 <= int(status) < 600
        assert set(json.loads(body)) == {"error"}
    assert "client_header_timeout 10s;" in text
