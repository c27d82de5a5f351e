"""A deterministic synthetic COCO instance-segmentation data set of coloured shapes.

```
python -m mask_r_cnn.synthetic OUT --train 8 --validation 4 --test 4 --size 128 --seed 0
```

writes `OUT/{train,validation,test}/annotations.json` beside JPEG and PNG images (some
grayscale, sizes between 3/4 and 1 x `--size`) with 0-4 overlapping circles, squares and
triangles each. `--train-shapes 2 5` draws 2 to 5 shapes (uniformly) into each training image
instead: crowded images teach how shapes look when others hide parts of them, while the
validation and test splits keep the 0-4 of the images a model is judged on (they are the same
files with or without it). Fully visible shapes are annotated with polygons, partly hidden ones
with a compressed RLE of their visible part, so both COCO segmentation forms occur. The same arguments
always produce byte-identical files. Existing splits are never overwritten. stdout gets a JSON
summary; errors go to stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

from mask_r_cnn.contract import MAX_SHAPES

CATEGORIES = (
    {"id": 1, "name": "circle"},
    {"id": 2, "name": "square"},
    {"id": 3, "name": "triangle"},
)
SPLITS = ("train", "validation", "test")
_MIN_VISIBLE_PIXELS = 12


def _shape_polygon(
    rng: np.random.Generator, category: int, cx: float, cy: float, r: float
) -> list[float]:
    angle = float(rng.uniform(0, 2 * math.pi))
    corners = {1: 24, 2: 4, 3: 3}[category]
    points = []
    for k in range(corners):
        theta = angle + 2 * math.pi * k / corners
        points += [round(cx + r * math.cos(theta), 2), round(cy + r * math.sin(theta), 2)]
    return points


def _render(polygon: Sequence[float], width: int, height: int) -> np.ndarray:
    canvas = Image.new("L", (width, height), 0)
    ImageDraw.Draw(canvas).polygon(list(polygon), fill=1)
    return np.asarray(canvas, dtype=bool)


def make_sample(
    rng: np.random.Generator, size: int, image_id: int, counts: tuple[int, int] | None = None
) -> tuple[Image.Image, list[dict[str, Any]]]:
    """Draw one image and its COCO annotations (without ids).

    Args:
        rng: the generator that decides everything about this image.
        size: the largest side in pixels.
        image_id: the COCO image id the annotations refer to.
        counts: the fewest and most shapes to draw (uniformly); None: 0-4, weighted
            0.1, 0.25, 0.25, 0.2, 0.2. Shapes hidden all but a few pixels get no annotation.

    Returns:
        The image and its annotations.
    """
    width = int(rng.integers(size * 3 // 4, size + 1))
    height = int(rng.integers(size * 3 // 4, size + 1))
    background = rng.integers(0, 256, size=3)
    noise = rng.normal(0, 12, size=(height, width, 3))
    pixels = np.clip(background + noise, 0, 255)
    if counts is None:
        count = int(rng.choice(5, p=[0.1, 0.25, 0.25, 0.2, 0.2]))
    else:
        count = int(rng.integers(counts[0], counts[1] + 1))
    shapes = []
    for _ in range(count):
        category = int(rng.integers(1, len(CATEGORIES) + 1))
        r = float(rng.uniform(0.1, 0.3)) * min(width, height)
        cx = float(rng.uniform(r * 0.5, width - r * 0.5))
        cy = float(rng.uniform(r * 0.5, height - r * 0.5))
        polygon = _shape_polygon(rng, category, cx, cy, r)
        mask = _render(polygon, width, height)
        colour = (background + rng.integers(60, 196, size=3)) % 256
        pixels[mask] = colour
        shapes.append((category, polygon, mask))
    annotations = []
    hidden = np.zeros((height, width), dtype=bool)
    for category, polygon, mask in reversed(shapes):  # later shapes hide earlier ones
        visible = mask & ~hidden
        hidden |= mask
        area = int(visible.sum())
        if area < _MIN_VISIBLE_PIXELS:
            continue
        rle = mask_utils.encode(np.asfortranarray(visible.astype(np.uint8)))
        if area == int(mask.sum()):
            segmentation: Any = [polygon]
        else:
            segmentation = {"size": [height, width], "counts": rle["counts"].decode("ascii")}
        x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
        annotations.append(
            {
                "image_id": image_id,
                "category_id": category,
                "segmentation": segmentation,
                "area": float(area),
                "bbox": [x, y, w, h],
                "iscrowd": 0,
            }
        )
    image = Image.fromarray(pixels.astype(np.uint8))
    return image, list(reversed(annotations))


def generate_split(
    out: Path, split: str, count: int, size: int, seed: int, counts: tuple[int, int] | None = None
) -> dict[str, Any]:
    """Write one split (`count` images and `annotations.json`) into `out/split`.

    ``counts`` is `make_sample`'s: the fewest and most shapes per image, None for 0-4.

    Raises:
        FileExistsError: the split's annotations.json exists already.
    """
    folder = out / split
    if (folder / "annotations.json").exists():
        raise FileExistsError(
            f"{folder / 'annotations.json'} exists already and is never overwritten; choose "
            "another output folder or delete it."
        )
    folder.mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    split_index = SPLITS.index(split) if split in SPLITS else len(SPLITS)
    for i in range(count):
        image_id = i + 1
        rng = np.random.default_rng([seed, split_index, i])
        image, anns = make_sample(rng, size, image_id, counts)
        grayscale = i % 5 == 4
        if grayscale:
            image = image.convert("L")
        suffix = "png" if i % 2 else "jpg"
        name = f"{split}-{image_id:05d}.{suffix}"
        buffer = io.BytesIO()
        if suffix == "jpg":
            image.save(buffer, format="JPEG", quality=90)
        else:
            image.save(buffer, format="PNG")
        (folder / name).write_bytes(buffer.getvalue())
        images.append(
            {"id": image_id, "file_name": name, "width": image.width, "height": image.height}
        )
        for ann in anns:
            annotations.append({"id": len(annotations) + 1, **ann})
    description = f"synthetic shapes, split={split}, seed={seed}, size={size}"
    if counts is not None:
        description += f", shapes={counts[0]}-{counts[1]}"
    doc = {
        "info": {"description": description},
        "images": images,
        "annotations": annotations,
        "categories": [dict(c) for c in CATEGORIES],
    }
    (folder / "annotations.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return {"path": str(folder), "images": len(images), "annotations": len(annotations)}


def generate(
    out: Path,
    *,
    train: int,
    validation: int,
    test: int,
    size: int = 128,
    seed: int = 0,
    train_shapes: tuple[int, int] | None = None,
) -> dict[str, dict[str, Any]]:
    """Write the train, validation and test splits under `out` (a split with 0 images is skipped).

    ``train_shapes`` (fewest, most) sets how many shapes each training image gets; None keeps
    the 0-4 of the validation and test splits, which it never changes.

    Returns:
        Per split: its path and its image and annotation counts.
    """
    if size < 32:
        raise ValueError(f"size {size} is too small; use at least 32 pixels.")
    if train_shapes is not None:
        fewest, most = train_shapes
        if not 0 <= fewest <= most <= MAX_SHAPES:
            raise ValueError(
                f"train shapes {fewest} to {most} are not a range within 0 to {MAX_SHAPES}; "
                "give the fewest, then the most (e.g. 2 5)."
            )
    counts = {"train": train, "validation": validation, "test": test}
    for split, count in counts.items():
        if count and (out / split / "annotations.json").exists():
            raise FileExistsError(
                f"{out / split / 'annotations.json'} exists already and is never overwritten; "
                "choose another output folder or delete it."
            )
    return {
        split: generate_split(
            out, split, count, size, seed, train_shapes if split == "train" else None
        )
        for split, count in counts.items()
        if count
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; prints the JSON summary on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m mask_r_cnn.synthetic", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--train", type=int, default=8, help="training images (default 8)")
    parser.add_argument("--validation", type=int, default=4, help="validation images (default 4)")
    parser.add_argument("--test", type=int, default=4, help="test images (default 4)")
    parser.add_argument(
        "--size", type=int, default=128, help="largest side in pixels (default 128)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--train-shapes",
        type=int,
        nargs=2,
        metavar=("FEWEST", "MOST"),
        help="shapes per training image, drawn uniformly (default: 0-4, as in the other splits)",
    )
    args = parser.parse_args(argv)
    if min(args.train, args.validation, args.test) < 0:
        parser.error("image counts must be >= 0")
    shapes = args.train_shapes
    try:
        summary = generate(
            args.out,
            train=args.train,
            validation=args.validation,
            test=args.test,
            size=args.size,
            seed=args.seed,
            train_shapes=(shapes[0], shapes[1]) if shapes else None,
        )
    except (FileExistsError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
