"""bbox and segm mAP of the batch transform output against the test set's COCO annotations.

The state machine runs a batch transform over the test prefix; SageMaker writes one
``<TransformOutput>/<input file>.out`` per input object, each holding the serving container's
answer ``{"predictions": [{"label", "category", "score", "box": [x1, y1, x2, y2],
"mask": {"size": [h, w], "counts": "<COCO RLE>"}}], ...}``. This handler matches every image of
``<TestData>annotations.json`` to its ``.out`` file by relative path (or by unique file name),
converts the predictions to COCO results and scores them with the container's COCO mAP
(`mask_r_cnn.metrics.coco_map`, pycocotools' COCOeval for both IoU types).

Event fields:
    TransformOutput: S3 prefix of the ``.out`` files (required).
    TestData: S3 prefix of the test set (required); its ``annotations.json`` is the ground truth.
    Annotations: S3 URI of the annotations (optional; overrides ``<TestData>annotations.json``).
    MetricsOutput: S3 URI to write the metrics to as a JSON document (optional), the model
        package's ``ModelMetrics.ModelQuality.Statistics``
        (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ModelQuality.html).

Returns ``{"bbox_mAP": float, "segm_mAP": float, "images": int, "predictions": int}``, plus
``MetricsUri`` when the metrics were written; the state machine's quality gate reads one of the
two mAP keys.
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Iterator, Mapping
from typing import Any

from workflow.lambdas import clients
from workflow.lambdas._util import error_code, require_field, split_s3_uri
from workflow.lambdas.errors import EvaluationError

logger = logging.getLogger(__name__)

OUTPUT_SUFFIX = ".out"
ANNOTATIONS_NAME = "annotations.json"
_MAX_LISTED = 5


def _list_keys(bucket: str, prefix: str) -> Iterator[str]:
    s3 = clients.client("s3")
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    while True:
        response = s3.list_objects_v2(**request)
        for item in response.get("Contents", []):
            yield item["Key"]
        if not response.get("IsTruncated"):
            return
        request["ContinuationToken"] = response["NextContinuationToken"]


def _read(bucket: str, key: str, what: str) -> bytes:
    try:
        return bytes(clients.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    except Exception as exc:
        if error_code(exc) in {"NoSuchKey", "404", "NotFound", "NoSuchBucket"}:
            raise EvaluationError(
                f"{what} s3://{bucket}/{key} does not exist; check that the test data and the "
                "transform output were written there."
            ) from exc
        raise


def _write_metrics(uri: str, metrics: Mapping[str, Any]) -> str:
    """Write ``metrics`` as JSON to ``uri``; the same document there already is kept.

    A redriven ComputeMetrics writes again: the local store never overwrites (PreconditionFailed),
    and a different document there means another run owns the key.
    """
    bucket, key = split_s3_uri(uri, "MetricsOutput")
    body = (json.dumps(dict(metrics), indent=2, sort_keys=True) + "\n").encode()
    s3 = clients.client("s3")
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    except Exception as exc:
        if error_code(exc) != "PreconditionFailed" or _read(bucket, key, "the metrics") != body:
            raise EvaluationError(
                f"cannot write the metrics to {uri} ({exc}); the key must be this run's own, "
                "under its TransformOutput."
            ) from exc
    return uri


def _parse_output(body: bytes, uri: str) -> list[dict[str, Any]]:
    """Return the predictions of one `.out` file (one JSON document, or JSON lines)."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        documents = [json.loads(text)]
    except json.JSONDecodeError:
        try:
            documents = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise EvaluationError(
                f"{uri} is not JSON ({exc.msg} at line {exc.lineno}); the transform must run the "
                "serving container with Accept application/json."
            ) from exc
    predictions: list[dict[str, Any]] = []
    for document in documents:
        if not isinstance(document, Mapping) or not isinstance(document.get("predictions"), list):
            raise EvaluationError(
                f"{uri} has no 'predictions' list; it must hold the /invocations answer of the "
                "serving container."
            )
        predictions.extend(document["predictions"])
    return predictions


def _coco_results(
    image: Mapping[str, Any],
    predictions: list[dict[str, Any]],
    categories: Mapping[Any, int],
    uri: str,
) -> list[dict[str, Any]]:
    results = []
    height, width = int(image["height"]), int(image["width"])
    for number, prediction in enumerate(predictions):
        try:
            label = prediction.get("label")
            category_id = categories.get(label, categories.get(prediction.get("category")))
            if category_id is None:
                raise EvaluationError(
                    f"{uri} prediction {number} has label {label!r} / category "
                    f"{prediction.get('category')!r}, which the test annotations do not define "
                    f"(known: {sorted(map(str, categories))[:10]}); evaluate the model on a test "
                    "set with the categories it was trained on."
                )
            x1, y1, x2, y2 = (float(v) for v in prediction["box"])
            mask = prediction["mask"]
            size = [int(v) for v in mask["size"]]
            if size != [height, width]:
                raise EvaluationError(
                    f"{uri} prediction {number} has a mask of size {size}, but the image "
                    f"{image['file_name']!r} is {[height, width]}; the transform output does not "
                    "belong to this test set."
                )
            results.append(
                {
                    "image_id": image["id"],
                    "category_id": category_id,
                    "score": float(prediction["score"]),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "segmentation": {"size": size, "counts": mask["counts"]},
                }
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EvaluationError(
                f"{uri} prediction {number} is malformed ({type(exc).__name__}: {exc}); each "
                "needs label, score, box [x1, y1, x2, y2] and mask {size, counts}."
            ) from exc
    return results


def _match_outputs(
    images: list[Mapping[str, Any]], outputs: Mapping[str, str], prefix_uri: str
) -> dict[Any, str]:
    """Map each image id to the key of its `.out` file, or raise naming the missing ones."""
    by_name: dict[str, list[str]] = {}
    for relative, output_key in outputs.items():
        by_name.setdefault(posixpath.basename(relative), []).append(output_key)
    matched: dict[Any, str] = {}
    missing: list[str] = []
    for image in images:
        name = str(image["file_name"]).removeprefix("./")
        candidates = by_name.get(posixpath.basename(name), [])
        key = outputs.get(name) or (candidates[0] if len(candidates) == 1 else None)
        if key is None:
            missing.append(name)
        else:
            matched[image["id"]] = key
    if missing:
        raise EvaluationError(
            f"{len(missing)} of {len(images)} test images have no transform output under "
            f"{prefix_uri} (e.g. {missing[:_MAX_LISTED]}); the transform job must run on the same "
            "test prefix whose annotations.json is evaluated."
        )
    return matched


def evaluate(
    transform_output: str, test_data: str, annotations_uri: str | None = None
) -> dict[str, Any]:
    """Compute bbox and segm mAP of a transform output against COCO annotations on S3.

    Args:
        transform_output: S3 prefix holding the ``.out`` files.
        test_data: S3 prefix of the test set.
        annotations_uri: S3 URI of the annotations (default ``<test_data>annotations.json``).

    Returns:
        ``{"bbox_mAP", "segm_mAP", "images", "predictions"}``.

    Raises:
        EvaluationError: Annotations or outputs are missing, unreadable or mismatched.
    """
    # The one COCO mAP implementation, the container's (torch-free: pycocotools and numpy, heavy,
    # so imported only by this handler). The Lambda bundle carries mask_r_cnn.metrics.
    from mask_r_cnn.metrics import coco_map

    if annotations_uri is None:
        annotations_uri = test_data.rstrip("/") + "/" + ANNOTATIONS_NAME
    ann_bucket, ann_key = split_s3_uri(annotations_uri, "the test annotations")
    out_bucket, out_prefix = split_s3_uri(transform_output, "TransformOutput")
    if out_prefix and not out_prefix.endswith("/"):
        out_prefix += "/"
    try:
        dataset = json.loads(_read(ann_bucket, ann_key, "the test annotations"))
    except json.JSONDecodeError as exc:
        raise EvaluationError(
            f"{annotations_uri} is not JSON ({exc.msg}); it must be a COCO annotations file."
        ) from exc
    if not isinstance(dataset, dict) or not all(
        isinstance(dataset.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise EvaluationError(
            f"{annotations_uri} lacks the COCO lists images, annotations and categories; write "
            "it with `python -m mask_r_cnn.synthetic` or another COCO exporter."
        )
    images = dataset["images"]
    if not images or not dataset["annotations"]:
        raise EvaluationError(
            f"{annotations_uri} has {len(images)} images and {len(dataset['annotations'])} "
            "annotations; mAP needs a test set with at least one annotated object."
        )
    outputs = {
        key[len(out_prefix) :][: -len(OUTPUT_SUFFIX)]: key
        for key in _list_keys(out_bucket, out_prefix)
        if key.endswith(OUTPUT_SUFFIX)
    }
    if not outputs:
        raise EvaluationError(
            f"{transform_output} holds no {OUTPUT_SUFFIX} files; check that the batch transform "
            "job succeeded and wrote to this prefix."
        )
    matched = _match_outputs(images, outputs, transform_output)
    categories: dict[Any, int] = {}
    for category in dataset["categories"]:
        categories[category["id"]] = category["id"]
        categories[str(category["id"])] = category["id"]
        categories[category.get("name")] = category["id"]
    results: list[dict[str, Any]] = []
    for image in images:
        key = matched[image["id"]]
        uri = f"s3://{out_bucket}/{key}"
        predictions = _parse_output(_read(out_bucket, key, "the transform output"), uri)
        results.extend(_coco_results(image, predictions, categories, uri))
    # AP@[.5:.95]; undefined (no detections) is 0. pycocotools' tables stay off stdout.
    metrics = coco_map(dataset, results)
    scores = {"bbox_mAP": metrics["bbox_mAP"], "segm_mAP": metrics["segm_mAP"]}
    logger.info("evaluated %d images, %d predictions: %s", len(images), len(results), scores)
    return {
        **scores,
        "images": len(images),
        "predictions": len(results),
    }


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: evaluate the transform output named in the event.

    Args:
        event: ``{"TransformOutput": "s3://...", "TestData": "s3://...", "Annotations"?: ...,
            "MetricsOutput"?: "s3://..."}``.
        context: The Lambda context (unused).

    Returns:
        ``{"bbox_mAP", "segm_mAP", "images", "predictions"}`` and ``MetricsUri`` when written.
    """
    transform_output = require_field(event, "TransformOutput")
    test_data = require_field(event, "TestData")
    annotations = event.get("Annotations")
    metrics = evaluate(transform_output, test_data, str(annotations) if annotations else None)
    output = event.get("MetricsOutput")
    if output:
        metrics["MetricsUri"] = _write_metrics(str(output), metrics)
    return metrics
