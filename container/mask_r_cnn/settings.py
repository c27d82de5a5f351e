"""Serving settings (`ServeSettings`), read once from the environment by `serve` and `wsgi`.

| variable | default | meaning |
| --- | --- | --- |
| `SAGEMAKER_BASE_DIR` | `/opt/ml` | the model is read from `$SAGEMAKER_BASE_DIR/model` |
| `SAGEMAKER_BIND_TO_PORT` | `8080` | the port to listen on |
| `SAGEMAKER_BIND_TO_HOST` | `0.0.0.0` | the address to listen on |
| `MODEL_SERVER_WORKERS` | CPU count | gunicorn worker processes (one model copy each) |
| `MODEL_SERVER_TIMEOUT` | `60` | seconds a request may take (nginx waits 5 s longer) |
| `MODEL_SERVER_THREADS` | CPUs / workers | torch threads per worker |
| `SAGEMAKER_MAX_PAYLOAD_IN_MB` | `6` | request bodies over it get 413 |
| `MASK_R_CNN_MAX_IMAGE_PIXELS` | `40000000` | images declaring more pixels get 413 (decompression bombs); at most Pillow's `Image.MAX_IMAGE_PIXELS` (89478485) |
| `MASK_R_CNN_NGINX` | `1` | `0` never starts nginx even when it is installed |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .env import base_dir_from
from .errors import UserInputError

DEFAULT_PORT = 8080
DEFAULT_TIMEOUT = 60
DEFAULT_MAX_PAYLOAD_MB = 6
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000


def cpu_count() -> int:
    """CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _positive_int(environ: Mapping[str, str], name: str, default: int, lo: int = 1) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < lo:
        raise UserInputError(
            f"{name}={text!r} is not a whole number >= {lo}; set it to one or unset it."
        )
    return int(text)


@dataclass(frozen=True, kw_only=True)
class ServeSettings:
    """Everything `serve` and the Flask app need to know (see the module table)."""

    model_dir: Path
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    workers: int = 1
    timeout: int = DEFAULT_TIMEOUT
    threads: int = 1
    max_payload_mb: int = DEFAULT_MAX_PAYLOAD_MB
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    use_nginx: bool = True

    @property
    def max_payload_bytes(self) -> int:
        """The request body limit in bytes."""
        return self.max_payload_mb * 1024 * 1024

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ServeSettings:
        """Read the settings.

        Raises:
            UserInputError: a variable holds a value that is not a whole number, or
                `MASK_R_CNN_MAX_IMAGE_PIXELS` is over Pillow's `Image.MAX_IMAGE_PIXELS`.
        """
        environ = os.environ if environ is None else environ
        workers = _positive_int(environ, "MODEL_SERVER_WORKERS", cpu_count())
        port = _positive_int(environ, "SAGEMAKER_BIND_TO_PORT", DEFAULT_PORT, lo=0)
        if port > 65535:
            raise UserInputError(f"SAGEMAKER_BIND_TO_PORT={port} is not a TCP port; use 1-65535.")
        max_image_pixels = _positive_int(
            environ, "MASK_R_CNN_MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS
        )
        pillow_limit = Image.MAX_IMAGE_PIXELS
        if pillow_limit is not None and max_image_pixels > pillow_limit:
            # Pillow refuses bigger images as decompression bombs before our own check runs.
            raise UserInputError(
                f"MASK_R_CNN_MAX_IMAGE_PIXELS={max_image_pixels} is over Pillow's decompression "
                f"bomb limit of {pillow_limit} pixels; set it to at most {pillow_limit}."
            )
        return cls(
            model_dir=base_dir_from(environ) / "model",
            host=environ.get("SAGEMAKER_BIND_TO_HOST", "").strip() or "0.0.0.0",
            port=port,
            workers=workers,
            timeout=_positive_int(environ, "MODEL_SERVER_TIMEOUT", DEFAULT_TIMEOUT),
            threads=_positive_int(environ, "MODEL_SERVER_THREADS", max(1, cpu_count() // workers)),
            max_payload_mb=_positive_int(
                environ, "SAGEMAKER_MAX_PAYLOAD_IN_MB", DEFAULT_MAX_PAYLOAD_MB
            ),
            max_image_pixels=max_image_pixels,
            use_nginx=environ.get("MASK_R_CNN_NGINX", "1").strip() != "0",
        )
