"""Endpoint evaluation (invoker, COCO metrics, latency) and the notebook figures."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import numpy as np
import pytest

from workflow.coco import annotation_mask
from workflow.notebook import (
    NotebookError,
    coco_metrics,
    endpoint_invoker,
    latency_summary,
    load_split,
    metrics_table,
    predict_split,
    time_requests,
)
from workflow.notebook.evaluate import Prediction, percentile


def _perfect_answer(split, image):
    """The serving contract's answer that reproduces the ground truth exactly."""
    from pycocotools import mask as mask_utils

    height, width = image["height"], image["width"]
    predictions = []
    for annotation in split.annotations_of(image):
        mask = annotation_mask(annotation, height, width)
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        x, y, w, h = annotation["bbox"]
        predictions.append({
            "label": annotation["category_id"],
            "category": split.category_names[annotation["category_id"]],
            "score": 0.9,
            "box": [x, y, x + w, y + h],
            "mask": {"size": [height, width], "counts": rle["counts"].decode()},
        })  # fmt: skip
    return {"predictions": predictions, "model": {}}


@pytest.fixture
def test_split(make_session, coco_root):
    return load_split(make_session(), coco_root / "train")  # 3 images with objects


def test_perfect_predictions_score_one(test_split):
    results = [
        Prediction(
            image=image, predictions=_perfect_answer(test_split, image)["predictions"], seconds=0.01
        )
        for image in test_split.images
    ]
    metrics = coco_metrics(test_split, results)
    assert metrics["bbox_mAP"] == pytest.approx(1.0)
    assert metrics["segm_mAP"] == pytest.approx(1.0)
    table = metrics_table(metrics)
    assert table.column("IoU type") == ["bbox", "segm"]
    no_answers = [Prediction(image=i, predictions=[], seconds=0.01) for i in test_split.images]
    assert coco_metrics(test_split, no_answers)["segm_mAP"] == 0.0


def test_unknown_categories_are_named(test_split):
    image = test_split.images[0]
    answer = _perfect_answer(test_split, image)["predictions"]
    answer[0] = {**answer[0], "label": 99, "category": "hexagon"}
    with pytest.raises(NotebookError, match="category 'hexagon', which the split does not define"):
        coco_metrics(test_split, [Prediction(image=image, predictions=answer, seconds=0.0)])


class _Endpoint(BaseHTTPRequestHandler):
    split: Any = None
    seen: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        if self.headers["Content-Type"] not in ("image/png", "image/jpeg"):
            self.send_response(415)
            self.end_headers()
            self.wfile.write(b'{"error": "unsupported"}')
            return
        split = type(self).split
        image = next(i for i in split.images if split.image_bytes(i) == body)
        data = json.dumps(_perfect_answer(split, image)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint(test_split):
    _Endpoint.split = test_split
    _Endpoint.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_predict_and_time_through_a_local_url(make_session, test_split, endpoint):
    invoke = endpoint_invoker(make_session(), endpoint_url=endpoint)
    results = predict_split(invoke, test_split, limit=2, score_threshold=0.25, warmup=1)
    assert [r.image["id"] for r in results] == [i["id"] for i in test_split.images[:2]]
    assert all(r.seconds > 0 for r in results)
    assert len(_Endpoint.seen) == 3  # one warm-up request
    assert _Endpoint.seen[0]["x-amzn-sagemaker-custom-attributes"] == "score_threshold=0.25"
    assert _Endpoint.seen[0]["accept"] == "application/json"
    assert coco_metrics(test_split, results)["bbox_mAP"] == pytest.approx(1.0)
    seconds = time_requests(invoke, test_split, 5)
    assert len(seconds) == 5
    with pytest.raises(NotebookError, match="cannot time 0 requests"):
        time_requests(invoke, test_split, 0)


def test_http_errors_are_one_sentence(make_session, test_split, endpoint):
    invoke = endpoint_invoker(make_session(), endpoint_url=endpoint)
    with pytest.raises(NotebookError, match="answered HTTP 415"):
        invoke(b"x", "text/plain", None)
    closed = endpoint_invoker(make_session(), endpoint_url="http://127.0.0.1:9")
    with pytest.raises(NotebookError, match="cannot be reached"):
        closed(b"x", "image/png", None)


def test_no_running_local_endpoint_is_named(make_session):
    from workflow.notebook import local_endpoint

    with pytest.raises(NotebookError, match="no local endpoint named 'mask-r-cnn' is running"):
        endpoint_invoker(make_session())
    with pytest.raises(NotebookError, match="no local endpoint named 'ep' is running"):
        local_endpoint(make_session(), "ep")
    with pytest.raises(NotebookError, match=r"cannot serve s3://b/m\.tar\.gz locally"):
        local_endpoint(make_session(), "ep", model_data="s3://b/m.tar.gz")


def test_latency_percentiles_match_numpy():
    values = [0.01, 0.5, 0.02, 0.03, 0.2, 0.04, 0.05]
    for q in (0, 50, 95, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    row = latency_summary(values).rows[0]
    assert row[0] == 7 and row[2] == pytest.approx(40.0) and row[4] == pytest.approx(500.0)
    with pytest.raises(ValueError, match="percentile of no values"):
        percentile([], 50)


def test_figures_render_to_png(test_split, make_events):
    from matplotlib.figure import Figure

    from workflow.notebook import state_visits, viz

    results = [
        Prediction(
            image=i,
            predictions=_perfect_answer(test_split, i)["predictions"],
            seconds=0.01 * (n + 1),
        )
        for n, i in enumerate(test_split.images)
    ]
    events = make_events([
        (0, "ExecutionStarted", None),
        (0, "TaskStateEntered", "Train"),
        (3, "TaskStateExited", "Train"),
        (3, "TaskStateEntered", "Deploy"),
    ])  # fmt: skip
    figures = [
        viz.sample_grid(test_split, count=2, title="train"),
        viz.class_count_chart({"train": test_split}),
        viz.timeline(state_visits(events)),
        viz.prediction_grid(test_split, results, count=2),
        viz.latency_histogram([r.seconds for r in results]),
        viz.metrics_chart({"bbox_mAP": 0.5, "segm_mAP": 0.25}),
    ]
    for figure in figures:
        assert isinstance(figure, Figure) and figure.axes
        image = viz.png(figure)
        assert image.data.startswith(b"\x89PNG") and image.format == "png"
    # the prediction grid pairs each ground truth with its prediction
    assert len(figures[3].axes) == 4
