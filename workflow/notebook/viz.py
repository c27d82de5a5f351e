"""The figures of the notebooks, drawn with matplotlib's object API (no pyplot state).

Every function returns a ``matplotlib.figure.Figure``; :func:`png` turns one into an
``IPython.display.Image``, so that executed notebooks hold PNG outputs whatever the backend.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflow.coco import annotation_mask
from workflow.notebook.data import CocoSplit

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from workflow.history import StateVisit
    from workflow.notebook.evaluate import Prediction

PALETTE = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60),
)  # fmt: skip
STATUS_COLORS = {
    "succeeded": "#3cb44b",
    "retried": "#bfef45",
    "caught": "#ffe119",
    "running": "#f58231",
    "failed": "#e6194b",
}


def png(figure: Figure, dpi: int = 100) -> Any:
    """Return the figure as an ``IPython.display.Image`` (a PNG output in the notebook)."""
    from IPython.display import Image

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return Image(data=buffer.getvalue(), format="png")  # type: ignore[no-untyped-call]


def png_file(path: str | Path) -> Any:
    """Return a PNG file as an ``IPython.display.Image``."""
    from IPython.display import Image

    return Image(filename=str(path))  # type: ignore[no-untyped-call]


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def color(index: int) -> tuple[float, float, float]:
    """Return palette colour ``index`` as RGB floats in [0, 1]."""
    r, g, b = PALETTE[index % len(PALETTE)]
    return r / 255.0, g / 255.0, b / 255.0


def overlay(image: np.ndarray, masks: Sequence[tuple[np.ndarray, int]], alpha: float = 0.5) -> Any:
    """Blend coloured masks (``(mask, colour index)``) into an RGB uint8 image."""
    import numpy as np

    canvas = image.astype(np.float32).copy()
    for mask, index in masks:
        if mask.shape != canvas.shape[:2]:
            continue
        tint = np.array(color(index), dtype=np.float32) * 255.0
        canvas[mask] = canvas[mask] * (1 - alpha) + tint * alpha
    return canvas.clip(0, 255).astype(np.uint8)


def _draw_truth(axes: Axes, split: CocoSplit, image: Mapping[str, Any]) -> None:
    import numpy as np
    from matplotlib.patches import Rectangle

    pixels = np.asarray(split.load_image(image))
    height, width = pixels.shape[:2]
    annotations = split.annotations_of(image)
    masks = [(annotation_mask(a, height, width), int(a["category_id"])) for a in annotations]
    axes.imshow(overlay(pixels, masks))
    for annotation in annotations:
        x, y, w, h = (float(v) for v in annotation["bbox"])
        category = int(annotation["category_id"])
        axes.add_patch(Rectangle((x, y), w, h, fill=False, color=color(category), linewidth=1.5))
        axes.text(x, y, split.category_names.get(category, str(category)), fontsize=7,
                  color="white", backgroundcolor=color(category), va="bottom")  # fmt: skip
    axes.set_axis_off()


def sample_grid(split: CocoSplit, count: int = 4, columns: int = 4, title: str = "") -> Figure:
    """Draw the first ``count`` images of a split with their masks, boxes and class names."""
    images = split.images[: max(count, 1)]
    columns = max(1, min(columns, len(images)))
    rows = max(1, -(-len(images) // columns))
    figure = _figure(3.0 * columns, 3.0 * rows)
    for number, image in enumerate(images):
        axes = figure.add_subplot(rows, columns, number + 1)
        _draw_truth(axes, split, image)
        axes.set_title(f"{image['file_name']} ({len(split.annotations_of(image))})", fontsize=8)
    heading = f"{len(images)} of {len(split.images)} images with their masks"
    figure.suptitle(f"{title}: {heading}" if title else heading)
    return figure


def class_count_chart(splits: Mapping[str, CocoSplit]) -> Figure:
    """Draw the instances per category, one bar group per category and one bar per split."""
    import numpy as np

    names: dict[int, str] = {}
    for split in splits.values():
        names.update(split.category_names)
    categories = sorted(names)
    figure = _figure(1.6 + 1.4 * len(categories), 3.2)
    axes = figure.add_subplot(1, 1, 1)
    width = 0.8 / max(len(splits), 1)
    positions = np.arange(len(categories))
    for number, (split_name, split) in enumerate(splits.items()):
        counts = [
            sum(1 for a in split.annotations if int(a["category_id"]) == c) for c in categories
        ]
        bars = axes.bar(positions + number * width, counts, width, label=split_name,
                        color=color(number))  # fmt: skip
        axes.bar_label(bars, fontsize=7)
    axes.set_xticks(positions + width * (len(splits) - 1) / 2, [names[c] for c in categories])
    axes.set_ylabel("instances")
    axes.set_title("instances per class")
    axes.legend(fontsize=8)
    return figure


def timeline(visits: Sequence[StateVisit], title: str = "states of the execution") -> Figure:
    """Draw a Gantt chart of the state visits (seconds after the execution started)."""
    order: list[str] = []
    for visit in visits:
        if visit.name not in order:
            order.append(visit.name)
    figure = _figure(9.0, 0.8 + 0.3 * max(len(order), 1))
    axes = figure.add_subplot(1, 1, 1)
    end = max((v.start + (v.seconds or 0.0) for v in visits), default=1.0)
    for visit in visits:
        row = order.index(visit.name)
        length = visit.seconds if visit.seconds is not None else max(end - visit.start, 0.0)
        axes.barh(row, max(length, end * 0.004), left=visit.start, height=0.6,
                  color=STATUS_COLORS.get(visit.status, "#999999"))  # fmt: skip
    axes.set_yticks(range(len(order)), order, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("seconds since the execution started")
    axes.set_title(title)
    from matplotlib.patches import Patch

    axes.legend(handles=[Patch(color=c, label=s) for s, c in STATUS_COLORS.items()],
                fontsize=7, loc="lower right")  # fmt: skip
    return figure


def prediction_grid(
    split: CocoSplit,
    results: Sequence[Prediction],
    count: int = 4,
    min_score: float = 0.0,
    top: int = 10,
) -> Figure:
    """Draw ground truth (left) beside the endpoint's masks, boxes and scores (right).

    Args:
        split: The split the images come from.
        results: The endpoint's answers.
        count: How many images to draw.
        min_score: Draw only detections scoring at least this.
        top: Draw at most this many detections per image, best first.
    """
    import numpy as np
    from matplotlib.patches import Rectangle

    shown = list(results)[: max(count, 1)]
    figure = _figure(7.0, 3.2 * max(len(shown), 1))
    for number, result in enumerate(shown):
        truth_axes = figure.add_subplot(len(shown), 2, 2 * number + 1)
        _draw_truth(truth_axes, split, result.image)
        truth_axes.set_title(f"ground truth: {result.image['file_name']}", fontsize=8)
        axes = figure.add_subplot(len(shown), 2, 2 * number + 2)
        pixels = np.asarray(split.load_image(result.image))
        ranked = sorted(result.predictions, key=lambda p: -float(p.get("score", 0.0)))
        kept = [p for p in ranked if float(p.get("score", 0.0)) >= min_score][: max(top, 0)]
        height, width = pixels.shape[:2]
        masks = [
            (annotation_mask({"segmentation": prediction["mask"]}, height, width), index)
            for index, prediction in enumerate(kept)
        ]
        axes.imshow(overlay(pixels, masks))
        for index, prediction in enumerate(kept):
            x1, y1, x2, y2 = (float(v) for v in prediction["box"])
            axes.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False,
                                     color=color(index), linewidth=1.5))  # fmt: skip
            label = (
                f"{prediction.get('category', prediction.get('label'))} {prediction['score']:.2f}"
            )
            axes.text(x1, y1, label, fontsize=7, color="white", backgroundcolor=color(index),
                      va="bottom")  # fmt: skip
        drawn = (
            f"{len(kept)} of {len(result.predictions)}"
            if len(kept) < len(result.predictions)
            else str(len(kept))
        )
        axes.set_title(f"prediction: {drawn} objects, {result.seconds * 1000:.0f} ms", fontsize=8)
        axes.set_axis_off()
    return figure


def latency_histogram(seconds: Sequence[float]) -> Figure:
    """Draw the request latencies (ms) with the p50 and p95 lines."""
    from workflow.notebook.evaluate import percentile

    values = [s * 1000.0 for s in seconds]
    figure = _figure(6.0, 3.2)
    axes = figure.add_subplot(1, 1, 1)
    axes.hist(values, bins=max(5, min(30, len(values))), color=color(2), alpha=0.8)
    for q, style in ((50, "--"), (95, ":")):
        value = percentile(values, q)
        axes.axvline(value, color="black", linestyle=style, label=f"p{q} = {value:.0f} ms")
    axes.set_xlabel("latency (ms)")
    axes.set_ylabel("requests")
    axes.set_title(f"{len(values)} requests")
    axes.legend(fontsize=8)
    return figure


def metrics_chart(metrics: Mapping[str, float]) -> Figure:
    """Draw bbox and segm mAP, AP50 and AP75 as grouped bars."""
    import numpy as np

    names = ("mAP", "AP50", "AP75")
    figure = _figure(5.0, 3.0)
    axes = figure.add_subplot(1, 1, 1)
    positions = np.arange(len(names))
    for number, kind in enumerate(("bbox", "segm")):
        values = [float(metrics.get(f"{kind}_{n}", 0.0)) for n in names]
        bars = axes.bar(positions + number * 0.4, values, 0.4, label=kind, color=color(number))
        axes.bar_label(bars, fmt="%.3f", fontsize=7)
    axes.set_xticks(positions + 0.2, names)
    axes.set_ylim(0, 1)
    axes.set_title("COCO metrics of the held-out images")
    axes.legend(fontsize=8)
    return figure
