"""The inference service: a Flask app with `/ping`, `/invocations` and `/execution-parameters`.

`create_app(settings)` loads the model once (in each gunicorn worker), runs one tiny forward
pass, and only then answers `/ping` with 200. `/invocations` accepts

- `image/jpeg`, `image/png`, `application/x-image`: the raw image bytes;
- `application/json`: `{"image": "<base64>", "score_threshold": 0.5}`;

and answers `application/json`:

```
{"predictions": [{"label": 1, "category": "circle", "score": 0.98,
                  "box": [x1, y1, x2, y2], "mask": {"size": [h, w], "counts": "<COCO RLE>"}}],
 "model": {...}}
```

with boxes and masks in the original image's pixels, sorted by score (a model trained with
`one_label_per_object` keeps only the best-scored label of overlapping detections). The header
`X-Amzn-SageMaker-Custom-Attributes: score_threshold=0.7` overrides the threshold (then the
JSON field, then the model's default). Every client error is a 4xx `{"error": "<sentence>"}`:
415 content type, 400 empty/truncated/undecodable image, bad JSON (nested too deeply, integers
past 4300 digits or a float included)/base64/threshold, an unreadable (malformed chunked) body
or an image too elongated for the model's resize, 406 unacceptable `Accept`, 413 body (with or
without `Content-Length`) or declared image size over the limit (decompression bombs included).
Errors of the HTTP layer itself are JSON too (see `http_worker.py`).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import math
import re
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import torch
from flask import Flask, Response, request
from PIL import Image, UnidentifiedImageError
from torchvision.models.detection import MaskRCNN
from torchvision.ops import nms
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .errors import MaskRCNNError, RequestError
from .model import ModelSpec, build_model
from .settings import ServeSettings
from .transforms import image_to_tensor, masks_to_rles

logger = logging.getLogger(__name__)

IMAGE_TYPES = ("image/jpeg", "image/png", "application/x-image")
JSON_TYPE = "application/json"
ACCEPTED_FORMATS = ("JPEG", "PNG")  # PIL's JPEG opener also returns camera MPO files
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
T = TypeVar("T")


class ModelLoadError(MaskRCNNError):
    """The model folder cannot be served."""


def parse_threshold(value: Any, source: str) -> float:
    """Parse a score threshold in [0, 1].

    Raises:
        RequestError: 400 when it is not a number in [0, 1].
    """
    try:
        number = float(value)
        if isinstance(value, bool) or not math.isfinite(number) or not 0 <= number <= 1:
            raise ValueError(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond a float
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
        raise RequestError(
            400, f"{source} score_threshold={shown} is not a number from 0 to 1; send e.g. 0.5."
        ) from None
    return number


def threshold_from_attributes(header: str | None) -> float | None:
    """Read `score_threshold=<x>` from the SageMaker custom attributes header, if present."""
    if not header:
        return None
    for part in header.replace(";", ",").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip() == "score_threshold":
            return parse_threshold(value.strip(), CUSTOM_ATTRIBUTES)
    return None


def _declared_pixels(exc: Exception) -> str:
    """The pixel count in Pillow's decompression-bomb message, or 'more than <its limit>'."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    return found.group(1) if found else f"more than {Image.MAX_IMAGE_PIXELS}"


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode JPEG or PNG bytes fully, refusing decompression bombs.

    Args:
        data: the image file's bytes.
        max_pixels: the most pixels an image may declare; at most Pillow's
            `Image.MAX_IMAGE_PIXELS` (`ServeSettings` checks it), which Pillow enforces first.

    Raises:
        RequestError: 400 for empty, truncated or undecodable bytes; 413 when the image
            declares more than `max_pixels` pixels.
    """
    if not data:
        raise RequestError(400, "the request body is empty; send the image bytes (JPEG or PNG).")
    try:
        with warnings.catch_warnings():
            # Pillow warns past MAX_IMAGE_PIXELS and raises past twice that, before we see the
            # size; both mean a declared size over our limit (settings cap it at Pillow's).
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise RequestError(
            413,
            f"the image declares {_declared_pixels(exc)} pixels, over the limit of {max_pixels} "
            "(MASK_R_CNN_MAX_IMAGE_PIXELS); send a smaller image.",
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise RequestError(
            400, f"the body ({len(data)} bytes) is not a JPEG or PNG image; send a valid image."
        ) from None
    width, height = image.size
    if width * height > max_pixels:
        raise RequestError(
            413,
            f"the image is {width}x{height} = {width * height} pixels, over the limit of "
            f"{max_pixels} (MASK_R_CNN_MAX_IMAGE_PIXELS); send a smaller image.",
        )
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise RequestError(
            400,
            f"the {image.format} image cannot be decoded ({exc}); it is truncated or damaged, "
            "send the complete file.",
        ) from None
    if width == 0 or height == 0:
        raise RequestError(400, "the image has no pixels; send a non-empty image.")
    return image


def resized_size(width: int, height: int, min_size: int, max_size: int) -> tuple[int, int]:
    """The (width, height) torchvision's `GeneralizedRCNNTransform` resizes an image to.

    The scale brings the short side to `min_size` unless that takes the long side over
    `max_size`; then the long side becomes `max_size` (so no side ever exceeds it) and a very
    elongated image's short side can round down to 0 px, which `interpolate` refuses.
    """
    scale = min(min_size / min(width, height), max_size / max(width, height))
    # torch.nn.functional.interpolate(recompute_scale_factor=True) floors float(size) * scale.
    return math.floor(float(width) * scale), math.floor(float(height) * scale)


def check_resizable(width: int, height: int, min_size: int, max_size: int) -> None:
    """Refuse an image the model's resize would shrink to less than 1 px on a side.

    Raises:
        RequestError: 400 naming the image size and the most elongated shape accepted.
    """
    if min(resized_size(width, height, min_size, max_size)) < 1:
        raise RequestError(
            400,
            f"the image is {width}x{height} pixels, too elongated for this model (resized to "
            f"its max_size of {max_size} px, the short side would be 0 px); the smallest "
            f"aspect ratio it accepts is 1:{max_size} (long side at most {max_size} times the "
            "short side), so crop or pad the image.",
        )


def parse_json_body(data: bytes) -> tuple[bytes, float | None]:
    """Return the image bytes and optional threshold of a JSON request.

    Raises:
        RequestError: 400 for malformed JSON, a missing `image`, bad base64 or threshold.
    """
    if not data:
        raise RequestError(400, 'the request body is empty; send {"image": "<base64>"}.')
    try:
        doc = json.loads(data)
    except RecursionError:
        raise RequestError(
            400, 'the JSON body is nested too deeply; send {"image": "<base64>"}.'
        ) from None
    except ValueError as exc:  # bad JSON or UTF-8, or an integer past 4300 digits
        raise RequestError(
            400, f'the body is not valid JSON ({str(exc)[:200]}); send {{"image": "<base64>"}}.'
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("image"), str):
        raise RequestError(
            400, 'the JSON body needs an "image" field holding the base64 of a JPEG or PNG.'
        )
    try:
        image = base64.b64decode(doc["image"], validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(
            400, 'the "image" field is not valid base64; encode the image file with base64.'
        ) from None
    threshold = doc.get("score_threshold")
    return image, None if threshold is None else parse_threshold(threshold, "JSON")


class Predictor:
    """The loaded model with its categories; one per worker process.

    All torch work (loading, the warm-up, every prediction) runs on one thread the predictor
    owns. libgomp, the OpenMP runtime of torch's CPU kernels, keeps a team of worker threads
    for each thread that starts a parallel region, and once its threads outnumber the CPUs
    they stop spinning between regions: with the model loaded on gunicorn's main thread and
    requests served on its pool threads, every forward took 1.5 times as long (measured by
    `bench/serving_overhead.py`). One inference thread keeps one team.

    Attributes:
        metadata: `model/metadata.json`.
        healthy: true once the model is loaded and a forward pass succeeded.
    """

    def __init__(self, model_dir: Path, threads: int | None = None) -> None:
        """Load `model/metadata.json` and `model/model.pth` on the inference thread.

        Args:
            model_dir: the folder `train` wrote.
            threads: torch threads of the inference thread; torch's default when None.

        Raises:
            ModelLoadError: a file is missing or does not match.
        """
        metadata_path = model_dir / "metadata.json"
        weights = model_dir / "model.pth"
        if not metadata_path.is_file() or not weights.is_file():
            raise ModelLoadError(
                f"{model_dir} does not hold metadata.json and model.pth; serve a model.tar.gz "
                "written by this container's train program."
            )
        self.metadata: dict[str, Any] = json.loads(metadata_path.read_text(encoding="utf-8"))
        self.spec = ModelSpec.from_dict(self.metadata["model"])
        self._inference = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self.model = self.run(self._load, weights, threads)
        self.base_threshold = float(self.model.roi_heads.score_thresh)
        self.default_threshold = float(self.metadata.get("score_threshold", 0.5))
        self.one_label_per_object = bool(self.metadata.get("one_label_per_object", False))
        self.categories = {
            int(c["label"]): (int(c["id"]), str(c["name"])) for c in self.metadata["categories"]
        }
        self.info = {
            "name": "mask_r_cnn",
            "backbone": self.spec.backbone,
            "one_label_per_object": self.one_label_per_object,
            "categories": len(self.categories),
            "source_commit": self.metadata.get("source_commit"),
            "training_job_name": self.metadata.get("training_job_name"),
            "created": self.metadata.get("created"),
        }
        self.healthy = False

    def _load(self, weights: Path, threads: int | None) -> MaskRCNN:
        if threads is not None:
            torch.set_num_threads(threads)  # per thread under OpenMP: set it where torch runs
        model = build_model(self.spec)
        try:
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelLoadError(
                f"{weights} does not fit the model described in metadata.json ({exc}); keep the "
                "two files of one training job together."
            ) from exc
        return model.eval()

    def run(self, function: Callable[..., T], *args: Any) -> T:
        """Call `function(*args)` on the inference thread (one call at a time) and return it."""
        return self._inference.submit(function, *args).result()

    def close(self) -> None:
        """Let the inference thread end once its current call is done."""
        self._inference.shutdown(wait=False)

    def warm_up(self) -> None:
        """Run one tiny forward pass; `healthy` becomes true when it works."""
        self.predict(Image.new("RGB", (32, 32)), 1.0)
        self.healthy = True

    def predict(self, image: Image.Image, threshold: float) -> list[dict[str, Any]]:
        """Detect objects in `image` scoring at least `threshold`, best first.

        Raises:
            RequestError: 400 when the model cannot resize the image (see `check_resizable`).
        """
        check_resizable(*image.size, self.spec.min_size, self.spec.max_size)
        return self.run(self._predict, image, threshold)

    def _predict(self, image: Image.Image, threshold: float) -> list[dict[str, Any]]:
        tensor = image_to_tensor(image)
        roi_heads = self.model.roi_heads
        with torch.inference_mode():
            # Dropping low scores before the mask head saves most of the mask work.
            roi_heads.score_thresh = max(self.base_threshold, threshold - 1e-6)
            try:
                output = self.model([tensor])[0]
            finally:
                roi_heads.score_thresh = self.base_threshold
        scores = output["scores"]
        order = torch.argsort(scores, descending=True)
        order = order[scores[order] >= threshold]
        if self.one_label_per_object:
            # torchvision suppresses overlaps within a class only; across classes too, each
            # object keeps its best-scored label (nms returns the kept indices best first).
            order = order[nms(output["boxes"][order], scores[order], roi_heads.nms_thresh)]
        boxes = output["boxes"][order].tolist()
        labels = output["labels"][order].tolist()
        rles = masks_to_rles(output["masks"][order])
        predictions = []
        for score, box, label, rle in zip(scores[order].tolist(), boxes, labels, rles, strict=True):
            category_id, name = self.categories.get(int(label), (int(label), str(label)))
            predictions.append(
                {
                    "label": category_id,
                    "category": name,
                    "score": round(float(score), 5),
                    "box": [round(float(v), 2) for v in box],
                    "mask": rle,
                }
            )
        return predictions


def _error(status: int, message: str) -> Response:
    return Response(json.dumps({"error": message}), status=status, mimetype=JSON_TYPE)


def create_app(settings: ServeSettings, predictor: Predictor | None = None) -> Flask:
    """Build the Flask app, loading and warming up the model first.

    Args:
        settings: serving settings.
        predictor: an already loaded predictor (tests); loaded from `settings.model_dir`
            otherwise.

    Returns:
        The WSGI app.
    """
    if predictor is None:
        started = time.monotonic()
        predictor = Predictor(settings.model_dir, threads=settings.threads)
        predictor.warm_up()
        logger.info(
            "model loaded: backbone=%s categories=%d threads=%d seconds=%.1f",
            predictor.spec.backbone,
            len(predictor.categories),
            settings.threads,
            time.monotonic() - started,
        )
    app = Flask("mask_r_cnn")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_payload_bytes
    # "//invocations" would get werkzeug's HTML 308 redirect (routing redirects skip the error
    # handlers); without merging it is an unknown path, answered in JSON.
    app.url_map.merge_slashes = False
    too_large = (
        f"the request body is over the limit of {settings.max_payload_mb} MB "
        "(SAGEMAKER_MAX_PAYLOAD_IN_MB); send a smaller image."
    )

    def read_body(limit: int) -> bytes:
        """The request body, refused with 413 past `limit` bytes, chunked or not."""
        if request.content_length is not None:
            if request.content_length > limit:
                raise RequestError(413, too_large)
            return body_bytes()
        # Without Content-Length werkzeug silently stops reading at MAX_CONTENT_LENGTH (it
        # only raises on a further read), so read one byte more to tell "over" from "at".
        request.max_content_length = limit + 1
        data = body_bytes()
        if len(data) > limit:
            raise RequestError(413, too_large)
        return data

    def body_bytes() -> bytes:
        """The body; a malformed chunked framing or a dropped upload is the client's error."""
        try:
            return request.get_data(cache=False)
        except HTTPException:
            raise  # 413 from werkzeug's own limit
        except Exception as exc:  # the server's body reader: gunicorn's chunk parser, sockets
            raise RequestError(
                400,
                f"the request body could not be read ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:120]}); send a complete body with a valid "
                "Content-Length or chunked encoding.",
            ) from None

    @app.get("/ping")
    def ping() -> Response:
        if not predictor.healthy:
            return _error(503, "the model is not loaded yet; retry in a few seconds.")
        return Response(json.dumps({"status": "healthy"}), status=200, mimetype=JSON_TYPE)

    @app.get("/execution-parameters")
    def execution_parameters() -> Response:
        body = {
            "MaxConcurrentTransforms": settings.workers,
            "BatchStrategy": "SINGLE_RECORD",
            "MaxPayloadInMB": settings.max_payload_mb,
        }
        return Response(json.dumps(body), status=200, mimetype=JSON_TYPE)

    @app.post("/invocations")
    def invocations() -> Response:
        mimetype = request.mimetype
        if mimetype not in (*IMAGE_TYPES, JSON_TYPE):
            shown = mimetype or "none"
            raise RequestError(
                415,
                f"Content-Type {shown!r} is not supported; send image/jpeg, image/png, "
                "application/x-image or application/json.",
            )
        accept = request.headers.get("Accept")
        if accept and request.accept_mimetypes.best_match([JSON_TYPE]) is None:
            raise RequestError(
                406, f"Accept {accept!r} cannot be met; this model answers application/json."
            )
        data = read_body(settings.max_payload_bytes)
        json_threshold = None
        if mimetype == JSON_TYPE:
            data, json_threshold = parse_json_body(data)
        image = decode_image(data, settings.max_image_pixels)
        header_threshold = threshold_from_attributes(request.headers.get(CUSTOM_ATTRIBUTES))
        threshold = next(
            t
            for t in (header_threshold, json_threshold, predictor.default_threshold)
            if t is not None
        )
        predictions = predictor.predict(image, threshold)
        body = {
            "predictions": predictions,
            "model": {**predictor.info, "score_threshold": threshold},
        }
        return Response(json.dumps(body, separators=(",", ":")), status=200, mimetype=JSON_TYPE)

    @app.errorhandler(RequestError)
    def request_error(exc: RequestError) -> Response:
        return _error(exc.status, str(exc))

    @app.errorhandler(RequestEntityTooLarge)
    def entity_too_large(exc: RequestEntityTooLarge) -> Response:
        return _error(413, too_large)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        return _error(
            status,
            f"{request.method} {request.path}: {exc.name.lower()}; use GET /ping, POST /invocations or GET /execution-parameters.",
        )

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> Response:
        logger.exception("internal error while serving %s", request.path)
        return _error(500, f"internal error ({type(exc).__name__}); see the endpoint's logs.")

    return app
