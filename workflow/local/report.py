"""What a local run shows: live progress on stderr, the summary, the history and a prediction PNG.

- :class:`Progress` listens to the engine (``engine.on_event``) and prints each state entered and
  left with its duration, task failures, the training log's progress lines (the whole log is in
  ``<root>/jobs/<job>/algo-1.log``) and a heartbeat line when nothing was printed for a while.
- :func:`summarize` collects the status, failing state, model artifact, metrics and endpoint;
  :func:`print_summary` prints it.
- :func:`draw_prediction` draws the masks, boxes and labels an endpoint returned onto the image,
  beside the image's ground truth when it is known; :func:`best_label_per_object` picks what is
  drawn and :func:`score_shapes` counts the shapes whose drawn label is right.
"""

from __future__ import annotations

import io
import json
import re
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from workflow.history import failing_state, progress_line, shorten
from workflow.local.store import ObjectExistsError, write_new

PROGRESS_LINE = re.compile(
    r"(epoch=\d+.*step=\d+|validation:|Epoch: \[|resumed:|train_loss|mAP|error|Error|ERROR)"
)
MIN_PICTURE_SIDE = 512
TITLE_HEIGHT = 24
PANEL_GAP = 12
PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180)]


class Progress:
    """Live progress of local executions on a stream (stderr by default).

    Args:
        stream: Where to print.
        heartbeat_seconds: Print a heartbeat after this many seconds without output.
        verbose: Print every training log line, not only the progress lines.
    """

    def __init__(
        self, stream: TextIO | None = None, heartbeat_seconds: float = 15.0, verbose: bool = False
    ) -> None:
        self._stream = stream
        self.heartbeat_seconds = heartbeat_seconds
        self.verbose = verbose
        self._lock = threading.Lock()
        self._last_output = time.monotonic()
        self._open: dict[str, float] = {}
        self._execution = ""
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stream(self) -> TextIO:
        """The output stream (resolved at print time so that tests can capture stderr)."""
        return self._stream or sys.stderr

    def print(self, text: str) -> None:
        """Print one line and remember when."""
        with self._lock:
            print(text, file=self.stream, flush=True)
            self._last_output = time.monotonic()

    # -- engine events --------------------------------------------------------------------------
    def __call__(self, event: Any) -> None:
        """Handle one ``EngineEvent``."""
        raw = event.event
        kind = str(raw.get("type", ""))
        self._execution = event.execution_arn
        if kind.endswith("StateEntered") and event.state_name:
            self._open[event.state_name] = time.monotonic()
        elif kind.endswith("StateExited") and event.state_name:
            self._open.pop(event.state_name, None)
        elif kind in ("ExecutionStarted", "ExecutionRedriven"):
            self._started = time.monotonic()
        line = progress_line(
            raw,
            execution_name=event.execution_name,
            duration=event.duration,
            state=event.state_name,
        )
        if line:
            self.print(line)

    # -- training logs --------------------------------------------------------------------------
    def log_sink(self, source: str, line: str) -> None:
        """Print the progress lines of a job's log (all lines when verbose)."""
        if self.verbose or PROGRESS_LINE.search(line):
            self.print(f"    [{source}] {line}")

    # -- heartbeat ------------------------------------------------------------------------------
    def start_heartbeat(self) -> None:
        """Start printing heartbeats on long waits."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
            self._thread.start()

    def stop_heartbeat(self) -> None:
        """Stop the heartbeat thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def _beat(self) -> None:
        while not self._stop.wait(min(1.0, self.heartbeat_seconds)):
            quiet = time.monotonic() - self._last_output
            if quiet < self.heartbeat_seconds or not self._open:
                continue
            state, since = max(self._open.items(), key=lambda item: item[1])
            self.print(
                f"  ... still in {state} ({time.monotonic() - since:.0f} s; run "
                f"{time.monotonic() - self._started:.0f} s; {self._execution})"
            )


def find_key(document: Any, key: str) -> Any:
    """Return the first value of ``key`` anywhere in a JSON document, else ``None``."""
    if isinstance(document, Mapping):
        if key in document:
            return document[key]
        values: Iterable[Any] = document.values()
    elif isinstance(document, list):
        values = document
    else:
        return None
    for value in values:
        found = find_key(value, key)
        if found is not None:
            return found
    return None


def metrics_of(output: Any) -> dict[str, Any]:
    """Return the evaluation metrics of an execution output (``$.Metrics.Payload``)."""
    metrics = output.get("Metrics") if isinstance(output, Mapping) else None
    if isinstance(metrics, Mapping) and isinstance(metrics.get("Payload"), Mapping):
        return dict(metrics["Payload"])
    final = find_key(output, "FinalMetricDataList")
    if isinstance(final, list):
        return {str(m.get("MetricName")): m.get("Value") for m in final if isinstance(m, Mapping)}
    return {}


def last_state_document(history: Iterable[Mapping[str, Any]]) -> Any:
    """Return the JSON document the last state entered received (``None`` when unknown)."""
    document = None
    for event in history:
        details = event.get("stateEnteredEventDetails")
        if isinstance(details, Mapping) and details.get("input"):
            document = details["input"]
    if isinstance(document, str):
        try:
            return json.loads(document)
        except ValueError:
            return None
    return document


def recorded_failure(document: Any) -> tuple[str, str, str] | None:
    """The ``$.Failure`` record the kit's state machine keeps: ``(State, Error, Cause)``.

    Every failure path of the kit's definition records which state failed and why before it
    ends the run, so it names the state that decided the outcome; an error that a Catch routed
    on earlier (an existing model package group, a missing endpoint) is not the failure. When
    the task error of that same state is known, the summary keeps it (its cause is the
    specific one, e.g. the reviewer's reason).
    ``None`` for documents without that record (state machines written by others).
    """
    failure = document.get("Failure") if isinstance(document, Mapping) else None
    if not isinstance(failure, Mapping) or not isinstance(failure.get("State"), str):
        return None
    return str(failure["State"]), str(failure.get("Error") or ""), str(failure.get("Cause") or "")


def summarize(execution: Any, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Collect what the summary shows from a finished execution."""
    output = execution.output
    history = execution.history()
    if output is None:  # a failed run: what the last state saw holds the results so far
        output = last_state_document(history)
    summary: dict[str, Any] = {
        "execution": execution.name,
        "execution_arn": execution.arn,
        "status": execution.status,
        "model_artifact": find_key(output, "S3ModelArtifacts"),
        "metrics": metrics_of(output),
    }
    if execution.status != "SUCCEEDED":
        state, error, cause = failing_state(history)
        recorded = recorded_failure(output)
        if recorded is not None and recorded[0] != state:  # an earlier error was caught
            state, error, cause = recorded
        summary.update(
            failed_state=state,
            error=error or execution.error,
            cause=cause or execution.cause,
            execution_error=execution.error,
            execution_cause=execution.cause,
        )
    summary.update(extra or {})
    return summary


def print_summary(summary: Mapping[str, Any], stream: TextIO | None = None) -> None:
    """Print the summary block."""
    out = stream or sys.stderr
    lines = ["", f"== {summary['status']}: {summary['execution']}"]
    if summary.get("failed_state") or summary.get("error"):
        lines.append(f"   failed state:    {summary.get('failed_state') or '-'}")
        lines.append(f"   error:           {summary.get('error') or '-'}")
        lines.append(f"   cause:           {shorten(str(summary.get('cause') or '-'), 500)}")
        if summary.get("execution_error") and summary["execution_error"] != summary.get("error"):
            lines.append(f"   execution error: {summary['execution_error']}")
    rows = [
        ("model artifact", summary.get("model_artifact")),
        ("model file", summary.get("model_path")),
        ("metrics", _format_metrics(summary.get("metrics") or {})),
        ("endpoint", summary.get("endpoint_url")),
        ("prediction", _prediction_line(summary)),
        ("history", summary.get("history")),
        ("outbox", summary.get("outbox")),
    ]
    lines += [f"   {name + ':':<16} {value}" for name, value in rows if value]
    if summary.get("hint"):
        lines.append(f"   {summary['hint']}")
    print("\n".join(lines), file=out, flush=True)


def _prediction_line(summary: Mapping[str, Any]) -> str | None:
    path = summary.get("prediction_png")
    if not path:
        return summary.get("prediction_error")
    count = summary.get("prediction_detections")
    line = f"{path} ({count} objects"
    if summary.get("prediction_threshold") is not None:
        line += f" scored >= {summary['prediction_threshold']}; none reached the serving threshold"
    shapes = summary.get("prediction_shapes")
    if isinstance(shapes, Mapping):
        line += f"; {shapes.get('right')} of {shapes.get('shapes')} shapes labelled right"
        wrong = [f"{shapes[k]} {k}" for k in ("wrong", "missed") if shapes.get(k)]
        line += f" ({', '.join(wrong)})" if wrong else ""
    if summary.get("prediction_hidden"):
        line += (
            f"; {summary['prediction_hidden']} lower-scored boxes of objects already labelled "
            "not drawn"
        )
    return line + ")"


def _format_metrics(metrics: Mapping[str, Any]) -> str:
    parts = []
    for key, value in sorted(metrics.items()):
        parts.append(f"{key}={value:.4f}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(parts)


def save_json(path: Path, value: Any) -> Path:
    """Write a JSON file that must not exist yet (runs never overwrite each other)."""
    text = json.dumps(value, indent=2, default=str) + "\n"
    try:  # whole or nothing for a reader; FileExistsError as before when it exists
        return write_new(path, text.encode("utf-8"))
    except ObjectExistsError as exc:
        raise FileExistsError(str(exc)) from None


OBJECT_IOU = 0.5  # boxes overlapping this much show one object (COCO's match threshold)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Return the intersection over union of two ``[x1, y1, x2, y2]`` boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(width, 0.0) * max(height, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _box(prediction: Mapping[str, Any]) -> list[float] | None:
    box = prediction.get("box")
    return box if isinstance(box, list) and len(box) == 4 else None


def best_label_per_object(
    predictions: Iterable[Mapping[str, Any]], iou: float = OBJECT_IOU
) -> tuple[list[Mapping[str, Any]], int]:
    """Keep each object's best-scored label: the predictions to draw and how many were left out.

    Mask R-CNN suppresses overlapping boxes within a class only, so one object can come back as
    "triangle 0.9" and "square 0.4". A prediction whose box overlaps a better-scored kept one by
    ``iou`` or more is left out of the picture (the endpoint's answer itself is unchanged).
    """
    ranked = sorted(predictions, key=lambda p: -float(p.get("score") or 0.0))
    kept: list[Mapping[str, Any]] = []
    for prediction in ranked:
        box = _box(prediction)
        boxes = (_box(other) for other in kept)
        if box is not None and any(b is not None and box_iou(box, b) >= iou for b in boxes):
            continue
        kept.append(prediction)
    return kept, len(ranked) - len(kept)


def score_shapes(
    ground_truth: Iterable[Mapping[str, Any]],
    drawn: Iterable[Mapping[str, Any]],
    iou: float = OBJECT_IOU,
) -> dict[str, int]:
    """Count the ground-truth shapes whose drawn prediction (box IoU >= ``iou``) is right.

    Returns:
        ``{"shapes", "right", "wrong", "missed"}``: a shape is right when the best-scored drawn
        prediction over it has its category, wrong when it has another, missed when none does.
    """
    boxed = [(box, p) for p in drawn if (box := _box(p)) is not None]
    counts = {"shapes": 0, "right": 0, "wrong": 0, "missed": 0}
    for shape in ground_truth:
        counts["shapes"] += 1
        over = [p for box, p in boxed if box_iou(box, shape["box"]) >= iou]
        if not over:
            counts["missed"] += 1
        elif max(over, key=lambda p: float(p.get("score") or 0.0)).get("category") == shape.get(
            "category"
        ):
            counts["right"] += 1
        else:
            counts["wrong"] += 1
    return counts


def _panel(
    image: Any,
    objects: Sequence[Mapping[str, Any]],
    title: str,
    colour_of: Mapping[str, int] | None = None,
) -> Any:
    """Return ``image`` enlarged, with the objects' masks, boxes and labels, under ``title``.

    An object's mask is a bool array or, as the endpoint answers, a COCO RLE. Each object gets
    the palette colour of its category in ``colour_of`` when given (the same colour for a
    category in both panels), else one colour per object.
    """
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    from workflow.coco import annotation_mask

    def colour(index: int, item: Mapping[str, Any]) -> tuple[int, int, int]:
        key = str(item.get("category"))
        slot = colour_of[key] if colour_of is not None and key in colour_of else index
        return PALETTE[slot % len(PALETTE)]

    canvas = np.asarray(image, dtype=np.float32).copy()
    for index, item in enumerate(objects):
        color = np.array(colour(index, item), dtype=np.float32)
        mask = item.get("mask")
        if not isinstance(mask, np.ndarray):
            mask = annotation_mask({"segmentation": mask}, *canvas.shape[:2])
        if mask.shape == canvas.shape[:2]:
            canvas[mask] = canvas[mask] * 0.5 + color * 0.5
    drawn = Image.fromarray(canvas.clip(0, 255).astype("uint8"))
    # Small images (the demo's 96 px) are enlarged so that boxes and labels stay readable.
    scale = max(1, -(-MIN_PICTURE_SIDE // max(drawn.size)))
    if scale > 1:
        drawn = drawn.resize((drawn.width * scale, drawn.height * scale), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(drawn)
    try:
        font: Any = ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    for index, item in enumerate(objects):
        color_t = colour(index, item)
        box = _box(item)
        if box is not None:
            corners = [float(v) * scale for v in box]
            draw.rectangle(corners, outline=color_t, width=2)
            label = item.get("category") or item.get("label")
            score = item.get("score")
            text = f"{label} {score:.2f}" if isinstance(score, float) else str(label)
            origin = (corners[0] + 3, corners[1] + 2)
            draw.rectangle(draw.textbbox(origin, text, font=font), fill=(255, 255, 255))
            draw.text(origin, text, fill=color_t, font=font)
    if title:
        framed = Image.new("RGB", (drawn.width, drawn.height + TITLE_HEIGHT), (255, 255, 255))
        framed.paste(drawn, (0, TITLE_HEIGHT))
        ImageDraw.Draw(framed).text((4, 4), title, fill=(0, 0, 0), font=font)
        return framed
    return drawn


def draw_prediction(
    image_path: Path,
    predictions: list[Mapping[str, Any]],
    out_path: Path,
    ground_truth: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """Draw masks (RLE), boxes, labels and scores onto an image and save it as a new PNG.

    With ``ground_truth`` (``{"category", "box", "mask"}`` per shape) the picture has two
    panels: the ground truth on the left, the predictions on the right.

    Raises:
        FileExistsError: When ``out_path`` exists (runs never overwrite artifacts).
    """
    from PIL import Image

    image = Image.open(image_path).convert("RGB")
    if ground_truth is None:
        picture = _panel(image, predictions, "")
    else:
        categories = [str(item.get("category")) for item in [*ground_truth, *predictions]]
        colour_of = {name: slot for slot, name in enumerate(dict.fromkeys(categories))}
        left = _panel(image, ground_truth, f"ground truth: {len(ground_truth)} shapes", colour_of)
        right = _panel(image, predictions, f"endpoint: {len(predictions)} objects", colour_of)
        picture = Image.new("RGB", (left.width + right.width + PANEL_GAP, left.height), "white")
        picture.paste(left, (0, 0))
        picture.paste(right, (left.width + PANEL_GAP, 0))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    try:  # whole or nothing for a reader, never over an existing picture
        return write_new(out_path, buffer.getvalue())
    except ObjectExistsError as exc:
        raise FileExistsError(str(exc)) from None
