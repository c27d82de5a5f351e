"""The checks of annotation values and image files, each failing with one actionable sentence.

Without decoding pixels: ints and coordinates within what an int64 or a float holds, polygons,
RLE sizes and counts, JSON that is too deep or too large, image files inside the channel folder
whose header matches the declared size.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from .dataset_index import MAX_COORDINATE, MAX_ID
from .errors import DataError


def is_int(value: Any, limit: int = MAX_ID) -> bool:
    """An int (not a bool) of at most `limit` in absolute value."""
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= limit


def is_coordinate(value: Any) -> bool:
    """A finite number that a float holds exactly enough (ints beyond 2**53 are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) <= MAX_COORDINATE if isinstance(value, int) else math.isfinite(value)


def short_repr(value: Any, limit: int = 60) -> str:
    """`repr(value)`, cut at `limit` characters (a deeply nested value is not rendered)."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):
        return f"<a {type(value).__name__} too deeply nested or too large to show>"
    return text if len(text) <= limit else text[:limit] + "..."


def image_path(root: Path, file_name: str, where: str) -> Path:
    """The image file `file_name` names, refused unless it lies inside the channel folder.

    Raises:
        DataError: `file_name` is absolute, holds `..`, or resolves (through a symlink) to a
            file outside `root`.
    """
    parts = Path(file_name).parts
    if not file_name or Path(file_name).is_absolute() or ".." in parts:
        raise DataError(
            f"{where} has file_name {file_name[:120]!r}, which leaves the channel folder; use a "
            "path relative to the annotation file's folder, without '..'."
        )
    path = root / file_name
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise DataError(
            f"{where} names {file_name[:120]!r}, a link to {resolved} outside the channel "
            f"folder {root}; copy the image into the channel instead of linking it."
        )
    return path


def check_polygon(seg: Any, where: str, fix: str) -> list[list[float]]:
    """Return a polygon segmentation as float lists; `DataError` naming `where` and `fix`."""
    polygons = seg
    if (
        polygons
        and isinstance(polygons, list)
        and all(isinstance(v, (int, float)) for v in polygons)
    ):
        polygons = [polygons]  # a single flat polygon, as some tools write it
    if not isinstance(polygons, list) or not polygons:
        raise DataError(f"{where} has an empty polygon list; {fix}")
    for poly in polygons:
        if not isinstance(poly, list) or not all(is_coordinate(v) for v in poly):
            raise DataError(
                f"{where} has a malformed polygon {short_repr(poly)} (expected a list of finite "
                f"numbers x1, y1, x2, y2, ...); {fix}"
            )
        if len(poly) < 6 or len(poly) % 2:
            raise DataError(
                f"{where} has a malformed polygon with {len(poly)} coordinates (a polygon needs "
                f"an even number, at least 6: x1, y1, x2, y2, x3, y3); {fix}"
            )
    return [[float(v) for v in poly] for poly in polygons]


def check_rle(seg: dict[str, Any], height: int, width: int, where: str, fix: str) -> dict[str, Any]:
    """Return an RLE segmentation of an image `height` x `width`; `DataError` when malformed."""
    size = seg.get("size")
    counts = seg.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(is_int(v) for v in size)):
        raise DataError(f"{where} has an RLE segmentation without a valid 'size' [h, w]; {fix}")
    if list(size) != [height, width]:
        raise DataError(
            f"{where} has an RLE of size {size} but its image is [{height}, {width}] (h, w); {fix}"
        )
    if isinstance(counts, list):
        if not all(is_int(v, MAX_ID) and v >= 0 for v in counts) or sum(counts) != height * width:
            raise DataError(
                f"{where} has uncompressed RLE counts that do not add up to h*w = "
                f"{height * width}; {fix}"
            )
    elif not isinstance(counts, str) or not counts:
        raise DataError(f"{where} has an RLE without 'counts' (a string or a list); {fix}")
    return {"size": list(size), "counts": counts}


def read_json(path: Path) -> Any:
    """Read an annotation file; `DataError` when it is not JSON, too deep or too large."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except RecursionError as exc:
        raise DataError(
            f"{path} nests arrays or objects too deeply to read; export the annotations again "
            "in COCO format (a COCO file nests at most 5 levels)."
        ) from exc
    except (OSError, ValueError) as exc:
        # ValueError: JSONDecodeError, bad UTF-8, and integers of more than 4300 digits
        # (Python's int conversion limit)
        raise DataError(
            f"{path} is not valid JSON ({str(exc)[:200]}); export the annotations again in "
            "COCO format."
        ) from exc


def check_image_file(
    path: Path, record_where: str, width: int | None, height: int | None
) -> tuple[int, int]:
    """Return an image file's (width, height); `DataError` unless readable and as declared."""
    if not path.is_file():
        raise DataError(
            f"{record_where} names {path.name!r} but {path} does not exist; copy the image "
            "beside the annotation file or fix its file_name."
        )
    try:
        with Image.open(path) as image:
            size = image.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(
            f"image {path} cannot be read ({exc}); replace it with a valid JPEG or PNG or "
            "remove it from the data set."
        ) from exc
    if width is not None and height is not None and size != (width, height):
        raise DataError(
            f"{record_where} declares {width}x{height} but {path.name} is {size[0]}x{size[1]} "
            "(width x height); fix width/height in the annotation file."
        )
    return size
