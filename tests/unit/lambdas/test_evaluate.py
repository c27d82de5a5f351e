"""evaluate: mAP of batch transform `.out` files on S3 (moto) against COCO annotations."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from workflow.lambdas import evaluate
from workflow.lambdas.errors import BadEventError, EvaluationError

SIZE = 48
BOXES = {1: [(4, 6, 20, 24)], 2: [(10, 10, 40, 30), (2, 30, 14, 46)]}  # image id -> x1,y1,x2,y2
TEST = "s3://data/prefix/data/test/"
OUT = "s3://data/prefix/transform/job-1/"


def rle(box: tuple[int, int, int, int]) -> dict[str, Any]:
    x1, y1, x2, y2 = box
    mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
    mask[y1:y2, x1:x2] = 1
    encoded = mask_utils.encode(np.asfortranarray(mask))
    return {"size": [SIZE, SIZE], "counts": encoded["counts"].decode()}


def annotations() -> dict[str, Any]:
    images, anns = [], []
    for image_id, boxes in BOXES.items():
        images.append(
            {
                "id": image_id,
                "file_name": f"images/{image_id:04d}.png",
                "height": SIZE,
                "width": SIZE,
            }
        )
        for x1, y1, x2, y2 in boxes:
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                    "segmentation": rle((x1, y1, x2, y2)),
                }
            )
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "shape"}]}


def prediction(box: tuple[int, int, int, int], score: float = 0.9) -> dict[str, Any]:
    return {"label": 1, "category": "shape", "score": score, "box": list(box), "mask": rle(box)}


@pytest.fixture
def s3(aws: Any) -> Any:
    client = aws.client("s3")
    client.create_bucket(Bucket="data")
    client.put_object(
        Bucket="data", Key="prefix/data/test/annotations.json", Body=json.dumps(annotations())
    )
    return client


def put_outputs(s3: Any, predictions: dict[int, list[dict[str, Any]]]) -> None:
    for image_id, preds in predictions.items():
        body = json.dumps({"predictions": preds, "model": {"backbone": "resnet18_fpn"}})
        s3.put_object(
            Bucket="data", Key=f"prefix/transform/job-1/images/{image_id:04d}.png.out", Body=body
        )


def test_perfect_predictions_score_one(s3: Any) -> None:
    put_outputs(s3, {i: [prediction(b) for b in boxes] for i, boxes in BOXES.items()})
    result = evaluate.handler({"TransformOutput": OUT, "TestData": TEST}, None)
    assert result["bbox_mAP"] == pytest.approx(1.0)
    assert result["segm_mAP"] == pytest.approx(1.0)
    assert result["images"] == 2
    assert result["predictions"] == 3


def test_worse_predictions_score_lower(s3: Any) -> None:
    shifted = {
        i: [prediction((x1 + 3, y1 + 3, x2 + 3, y2 + 3)) for x1, y1, x2, y2 in boxes]
        for i, boxes in BOXES.items()
    }
    put_outputs(s3, shifted)
    result = evaluate.handler({"TransformOutput": OUT, "TestData": TEST}, None)
    assert 0.0 < result["segm_mAP"] < 1.0
    assert 0.0 < result["bbox_mAP"] < 1.0


def test_no_detections_score_zero(s3: Any) -> None:
    put_outputs(s3, {1: [], 2: []})
    result = evaluate.handler({"TransformOutput": OUT, "TestData": TEST}, None)
    assert result == {"bbox_mAP": 0.0, "segm_mAP": 0.0, "images": 2, "predictions": 0}


def test_outputs_matched_by_file_name_when_the_prefix_differs(s3: Any) -> None:
    for image_id, boxes in BOXES.items():
        body = json.dumps({"predictions": [prediction(b) for b in boxes]})
        s3.put_object(
            Bucket="data", Key=f"prefix/transform/job-1/{image_id:04d}.png.out", Body=body
        )
    s3.put_object(Bucket="data", Key="prefix/transform/job-1/annotations.json.out", Body="{}")
    result = evaluate.handler({"TransformOutput": OUT, "TestData": TEST}, None)
    assert result["segm_mAP"] == pytest.approx(1.0)


def test_missing_output_names_the_images(s3: Any) -> None:
    put_outputs(s3, {1: [prediction(BOXES[1][0])]})
    with pytest.raises(
        EvaluationError, match=r"1 of 2 test images have no transform output .*0002\.png"
    ):
        evaluate.handler({"TransformOutput": OUT, "TestData": TEST}, None)


def test_empty_output_prefix_is_an_error(s3: Any) -> None:
    with pytest.raises(
        EvaluationError, match=r"holds no \.out files; check that the batch transform"
    ):
        evaluate.handler({"TransformOutput": OUT, "TestData": TEST}, None)


def test_missing_annotations_is_an_error(s3: Any) -> None:
    with pytest.raises(
        EvaluationError, match=r"s3://data/elsewhere/annotations.json does not exist"
    ):
        evaluate.handler({"TransformOutput": OUT, "TestData": "s3://data/elsewhere/"}, None)


def test_mask_of_another_size_is_a_mismatch(s3: Any) -> None:
    bad = prediction(BOXES[1][0])
    bad["mask"]["size"] = [64, 64]
    put_outputs(s3, {1: [bad], 2: []})
    with pytest.raises(
        EvaluationError, match=r"mask of size \[64, 64\].*does not belong to this test set"
    ):
        evaluate.handler({"TransformOutput": OUT, "TestData": TEST}, None)


def test_unknown_label_is_a_mismatch(s3: Any) -> None:
    bad = {**prediction(BOXES[1][0]), "label": 7, "category": "cat"}
    put_outputs(s3, {1: [bad], 2: []})
    with pytest.raises(EvaluationError, match="label 7 / category 'cat'"):
        evaluate.handler({"TransformOutput": OUT, "TestData": TEST}, None)


def test_output_that_is_not_json_is_an_error(s3: Any) -> None:
    s3.put_object(Bucket="data", Key="prefix/transform/job-1/images/0001.png.out", Body=b"<html>")
    put_outputs(s3, {2: []})
    with pytest.raises(EvaluationError, match=r"0001\.png\.out is not JSON"):
        evaluate.handler({"TransformOutput": OUT, "TestData": TEST}, None)


def test_malformed_prediction_is_an_error(s3: Any) -> None:
    put_outputs(s3, {1: [{"label": 1, "score": 0.5}], 2: []})
    with pytest.raises(EvaluationError, match="prediction 0 is malformed"):
        evaluate.handler({"TransformOutput": OUT, "TestData": TEST}, None)


def test_not_an_s3_uri_is_a_bad_event(aws: Any) -> None:
    with pytest.raises(BadEventError, match="TransformOutput = '/tmp/x' is not an S3 URI"):
        evaluate.handler({"TransformOutput": "/tmp/x", "TestData": TEST}, None)


def test_result_goes_only_to_the_return_value(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    put_outputs(s3, {i: [prediction(b) for b in boxes] for i, boxes in BOXES.items()})
    evaluate.handler({"TransformOutput": OUT, "TestData": TEST}, None)
    assert capsys.readouterr().out == ""  # pycocotools' progress prints are swallowed


def test_metrics_are_written_as_the_model_quality_statistics(s3: Any) -> None:
    # ModelMetrics.ModelQuality.Statistics is an S3 JSON document:
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ModelQuality.html
    put_outputs(s3, {1: [], 2: []})
    uri = OUT + "model-quality.json"
    result = evaluate.handler(
        {"TransformOutput": OUT, "TestData": TEST, "MetricsOutput": uri}, None
    )
    assert result["MetricsUri"] == uri
    body = s3.get_object(Bucket="data", Key="prefix/transform/job-1/model-quality.json")["Body"]
    assert json.loads(body.read()) == {
        "bbox_mAP": 0.0,
        "segm_mAP": 0.0,
        "images": 2,
        "predictions": 0,
    }


def test_a_rerun_keeps_the_same_metrics_document(monkeypatch: pytest.MonkeyPatch, s3: Any) -> None:
    # The local store never overwrites (PreconditionFailed): the same document is accepted.
    from botocore.exceptions import ClientError

    put_outputs(s3, {1: [], 2: []})
    uri = OUT + "model-quality.json"
    event = {"TransformOutput": OUT, "TestData": TEST, "MetricsOutput": uri}
    evaluate.handler(event, None)
    real_client = evaluate.clients.client

    class Refusing:
        def __init__(self, client: Any) -> None:
            self.client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self.client, name)

        def put_object(self, **kwargs: Any) -> Any:
            error = {"Error": {"Code": "PreconditionFailed", "Message": "exists"}}
            raise ClientError(error, "PutObject")

    monkeypatch.setattr(evaluate.clients, "client", lambda name: Refusing(real_client(name)))
    assert evaluate.handler(event, None)["MetricsUri"] == uri
    s3.put_object(Bucket="data", Key="prefix/transform/job-1/model-quality.json", Body=b"{}")
    with pytest.raises(EvaluationError, match="cannot write the metrics to s3://"):
        evaluate.handler(event, None)
