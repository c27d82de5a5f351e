"""Training and validation data: COCO instance segmentation and the PennFudan layout.

A channel folder holds either
- COCO: `annotations.json` (`images`, `annotations` with polygon or RLE `segmentation`,
  `categories`) beside the image files it names (`file_name` is relative to the folder), or
- PennFudan (the torchvision tutorial's layout): `PNGImages/<name>.png` and
  `PedMasks/<name>_mask.png`, one instance per non-zero mask value, one category `person`.

`load_channel` validates everything it can without decoding pixels (structure, ids, polygons,
RLE sizes, that each image file exists and its header matches the declared size) and raises
`ChannelError`/`DataError` with one sentence naming the file, the value and the fix. That covers
hostile files too: JSON nested too deeply or holding integers of thousands of digits, ids,
sizes or coordinates beyond what a float or an int64 holds, and image files (`file_name`, or a
symlink) outside the channel folder are refused the same way.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from pycocotools import mask as mask_utils

from .errors import ChannelError, DataError
from .transforms import Target, boxes_from_masks, image_to_tensor

logger = logging.getLogger(__name__)

ANNOTATIONS_FILE = "annotations.json"
PENNFUDAN_IMAGES = "PNGImages"
PENNFUDAN_MASKS = "PedMasks"
PENNFUDAN_CATEGORY_ID = 1
PENNFUDAN_CATEGORY_NAME = "person"

# Ids become int64 tensors and COCO evaluation keys; sizes are pixels; coordinates become floats.
MAX_ID = 2**63 - 1
MAX_SIDE = 2**31 - 1
MAX_COORDINATE = 2.0**53

Segmentation = list[list[float]] | dict[str, Any]


@dataclass(frozen=True)
class Category:
    """A COCO category; `label` is its contiguous model label (1..K, 0 is background)."""

    id: int
    name: str


@dataclass(frozen=True)
class Instance:
    """One annotated object of an image."""

    category_id: int
    segmentation: Segmentation
    iscrowd: bool = False


@dataclass(frozen=True)
class ImageRecord:
    """One image of a channel and its instances (PennFudan images carry a mask file instead)."""

    id: int
    path: Path
    width: int
    height: int
    instances: tuple[Instance, ...] = ()
    mask_path: Path | None = None


@dataclass(frozen=True)
class DatasetIndex:
    """A validated channel: its categories and images, nothing decoded yet."""

    root: Path
    layout: Literal["coco", "pennfudan"]
    categories: tuple[Category, ...]
    images: tuple[ImageRecord, ...]
    label_of: dict[int, int] = field(default_factory=dict)

    @property
    def num_instances(self) -> int:
        """Number of annotated instances (PennFudan counts are only known after decoding)."""
        return sum(len(r.instances) for r in self.images)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


def labels_for(categories: Sequence[Category]) -> dict[int, int]:
    """Map category ids to contiguous labels 1..K in ascending id order."""
    return {c.id: i + 1 for i, c in enumerate(sorted(categories, key=lambda c: c.id))}


def load_channel(root: Path, channel: str) -> DatasetIndex:
    """Find, read and validate the data set in a channel folder.

    Args:
        root: the channel folder (`input/data/<channel>`).
        channel: its name, for messages.

    Returns:
        The validated index.

    Raises:
        ChannelError: the folder is missing, empty, or holds neither layout or no images.
        DataError: an annotation or image is invalid.
    """
    if not root.is_dir():
        raise ChannelError(
            f"channel {channel!r} is missing: {root} does not exist; pass the channel "
            f"'{channel}' (an S3 prefix with a COCO annotations.json or a PennFudan tree) "
            "to the training job."
        )
    if not any(root.iterdir()):
        raise ChannelError(
            f"there are no files in {root}; this usually means the S3 prefix of channel "
            f"{channel!r} is wrong or empty, so point it at the folder holding annotations.json."
        )
    if (root / ANNOTATIONS_FILE).is_file():
        index = _load_coco(root / ANNOTATIONS_FILE, channel)
    elif (root / PENNFUDAN_IMAGES).is_dir():
        index = _load_pennfudan(root, channel)
    else:
        jsons = sorted(root.glob("*.json"))
        if len(jsons) != 1:
            raise ChannelError(
                f"channel {channel!r} ({root}) holds neither {ANNOTATIONS_FILE} (COCO) nor "
                f"{PENNFUDAN_IMAGES}/ + {PENNFUDAN_MASKS}/ (PennFudan); add the annotation file "
                "beside the images."
            )
        index = _load_coco(jsons[0], channel)
    if not index.images:
        raise ChannelError(
            f"channel {channel!r} ({root}) contains no images; add images to the data set "
            "or point the channel at the right S3 prefix."
        )
    logger.info(
        "channel=%s layout=%s images=%d categories=%d",
        channel,
        index.layout,
        len(index.images),
        len(index.categories),
    )
    return index


def _is_int(value: Any, limit: int = MAX_ID) -> bool:
    """An int (not a bool) of at most `limit` in absolute value."""
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= limit


def _is_coordinate(value: Any) -> bool:
    """A finite number that a float holds exactly enough (ints beyond 2**53 are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) <= MAX_COORDINATE if isinstance(value, int) else math.isfinite(value)


def _short(value: Any, limit: int = 60) -> str:
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


def _check_polygon(seg: Any, where: str, fix: str) -> list[list[float]]:
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
        if not isinstance(poly, list) or not all(_is_coordinate(v) for v in poly):
            raise DataError(
                f"{where} has a malformed polygon {_short(poly)} (expected a list of finite "
                f"numbers x1, y1, x2, y2, ...); {fix}"
            )
        if len(poly) < 6 or len(poly) % 2:
            raise DataError(
                f"{where} has a malformed polygon with {len(poly)} coordinates (a polygon needs "
                f"an even number, at least 6: x1, y1, x2, y2, x3, y3); {fix}"
            )
    return [[float(v) for v in poly] for poly in polygons]


def _check_rle(
    seg: dict[str, Any], height: int, width: int, where: str, fix: str
) -> dict[str, Any]:
    size = seg.get("size")
    counts = seg.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size)):
        raise DataError(f"{where} has an RLE segmentation without a valid 'size' [h, w]; {fix}")
    if list(size) != [height, width]:
        raise DataError(
            f"{where} has an RLE of size {size} but its image is [{height}, {width}] (h, w); {fix}"
        )
    if isinstance(counts, list):
        if not all(_is_int(v, MAX_ID) and v >= 0 for v in counts) or sum(counts) != height * width:
            raise DataError(
                f"{where} has uncompressed RLE counts that do not add up to h*w = "
                f"{height * width}; {fix}"
            )
    elif not isinstance(counts, str) or not counts:
        raise DataError(f"{where} has an RLE without 'counts' (a string or a list); {fix}")
    return {"size": list(size), "counts": counts}


def _read_json(path: Path) -> Any:
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


def _check_image_file(
    path: Path, record_where: str, width: int | None, height: int | None
) -> tuple[int, int]:
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


def _load_coco(path: Path, channel: str) -> DatasetIndex:
    root = path.parent
    where_file = _rel(path, root)
    fix = f"fix or remove that annotation in {where_file}."
    doc = _read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise DataError(
            f"{where_file} is not a COCO annotation file (no 'images' list); export it in COCO "
            "instance-segmentation format with images, annotations and categories."
        )
    raw_categories = doc.get("categories")
    if not isinstance(raw_categories, list) or not raw_categories:
        raise DataError(
            f"{where_file} has no 'categories'; add the list of {{'id', 'name'}} categories."
        )
    categories: dict[int, Category] = {}
    for i, cat in enumerate(raw_categories):
        if (
            not isinstance(cat, dict)
            or not _is_int(cat.get("id"))
            or not isinstance(cat.get("name"), str)
        ):
            raise DataError(
                f"{where_file}: categories[{i}] = {_short(cat, 80)} needs an integer 'id' (at "
                f"most {MAX_ID}) and a string 'name'; fix that category."
            )
        if cat["id"] in categories or cat["id"] <= 0:
            raise DataError(
                f"{where_file}: category id {cat['id']} is duplicated or not positive; give each "
                "category a unique id >= 1."
            )
        categories[cat["id"]] = Category(id=cat["id"], name=cat["name"])

    images: dict[int, dict[str, Any]] = {}
    for i, img in enumerate(doc["images"]):
        if (
            not isinstance(img, dict)
            or not _is_int(img.get("id"))
            or not isinstance(img.get("file_name"), str)
        ):
            raise DataError(
                f"{where_file}: images[{i}] = {_short(img, 80)} needs an integer 'id' (at most "
                f"{MAX_ID}) and a 'file_name'; fix that image entry."
            )
        if img["id"] in images:
            raise DataError(
                f"{where_file}: image id {img['id']} appears twice; give each image a unique id."
            )
        for key in ("width", "height"):
            if key in img and not (_is_int(img[key], MAX_SIDE) and img[key] > 0):
                raise DataError(
                    f"{where_file}: image {img['id']} has {key} = {_short(img[key])}; set it to "
                    "the image's size in pixels."
                )
        images[img["id"]] = img

    instances: dict[int, list[Instance]] = {image_id: [] for image_id in images}
    raw_annotations = doc.get("annotations", [])
    if not isinstance(raw_annotations, list):
        raise DataError(f"{where_file}: 'annotations' is not a list; export it in COCO format.")
    sizes: dict[int, tuple[int, int]] = {}
    paths: dict[int, Path] = {}
    for image_id, img in images.items():
        paths[image_id] = image_path(root, img["file_name"], f"{where_file}: image {image_id}")
        sizes[image_id] = _check_image_file(
            paths[image_id],
            f"{where_file}: image {image_id}",
            img.get("width"),
            img.get("height"),
        )
    for i, ann in enumerate(raw_annotations):
        ann_id = ann.get("id", i) if isinstance(ann, dict) else i
        ann_id = ann_id if _is_int(ann_id) else i
        where = f"{where_file}: annotation {ann_id}"
        if not isinstance(ann, dict):
            raise DataError(f"{where} is not an object; {fix}")
        ann_image = ann.get("image_id")
        if not _is_int(ann_image) or ann_image not in images:
            raise DataError(
                f"{where} names image_id {_short(ann_image)}, which is not in 'images'; add that image "
                f"or {fix}"
            )
        category_id = ann.get("category_id")
        if not _is_int(category_id) or category_id not in categories:
            raise DataError(
                f"{where} names category_id {_short(category_id)}, which is not in 'categories' "
                f"(known: {sorted(categories)}); add the category or {fix}"
            )
        seg = ann.get("segmentation")
        width, height = sizes[ann_image]
        if isinstance(seg, dict):
            segmentation: Segmentation = _check_rle(seg, height, width, where, fix)
        elif isinstance(seg, list):
            segmentation = _check_polygon(seg, where, fix)
        else:
            raise DataError(
                f"{where} has no usable 'segmentation' ({type(seg).__name__}); instance "
                f"segmentation needs a polygon list or an RLE; {fix}"
            )
        iscrowd = ann.get("iscrowd", 0)
        if iscrowd not in (0, 1, True, False):
            raise DataError(f"{where} has iscrowd = {_short(iscrowd)} (expected 0 or 1); {fix}")
        instances[ann_image].append(
            Instance(category_id=category_id, segmentation=segmentation, iscrowd=bool(iscrowd))
        )
    records = tuple(
        ImageRecord(
            id=image_id,
            path=paths[image_id],
            width=sizes[image_id][0],
            height=sizes[image_id][1],
            instances=tuple(instances[image_id]),
        )
        for image_id, img in sorted(images.items())
    )
    cats = tuple(sorted(categories.values(), key=lambda c: c.id))
    return DatasetIndex(
        root=root, layout="coco", categories=cats, images=records, label_of=labels_for(cats)
    )


def _load_pennfudan(root: Path, channel: str) -> DatasetIndex:
    images_dir = root / PENNFUDAN_IMAGES
    masks_dir = root / PENNFUDAN_MASKS
    if not masks_dir.is_dir():
        raise ChannelError(
            f"channel {channel!r} has {PENNFUDAN_IMAGES}/ but no {PENNFUDAN_MASKS}/ in {root}; "
            "copy the PennFudan masks folder beside the images."
        )
    records = []
    paths = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    for image_id, path in enumerate(paths, start=1):
        where = f"{PENNFUDAN_IMAGES}/{path.name}"
        path = image_path(root, f"{PENNFUDAN_IMAGES}/{path.name}", where)
        mask_path = image_path(
            root, f"{PENNFUDAN_MASKS}/{path.stem}_mask.png", f"the mask of {where}"
        )
        if not mask_path.is_file():
            raise DataError(
                f"{where} has no mask {PENNFUDAN_MASKS}/{mask_path.name}; add the mask or remove "
                "the image."
            )
        width, height = _check_image_file(path, where, None, None)
        _check_image_file(mask_path, f"{PENNFUDAN_MASKS}/{mask_path.name}", width, height)
        records.append(
            ImageRecord(id=image_id, path=path, width=width, height=height, mask_path=mask_path)
        )
    cats = (Category(id=PENNFUDAN_CATEGORY_ID, name=PENNFUDAN_CATEGORY_NAME),)
    return DatasetIndex(
        root=root,
        layout="pennfudan",
        categories=cats,
        images=tuple(records),
        label_of=labels_for(cats),
    )


def check_compatible(training: DatasetIndex, validation: DatasetIndex) -> None:
    """Make sure the validation categories are a subset of the training ones.

    Raises:
        DataError: a validation category id is unknown to training or has another name.
    """
    known = {c.id: c.name for c in training.categories}
    for cat in validation.categories:
        if known.get(cat.id) != cat.name:
            raise DataError(
                f"validation category {cat.id} ({cat.name!r}) does not match the training "
                f"categories {sorted(known.items())}; use the same category ids and names in "
                "both channels."
            )


def decode_image(path: Path) -> Image.Image:
    """Decode an image file fully.

    Raises:
        DataError: the file is truncated or cannot be decoded.
    """
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(
            f"image {path} cannot be decoded ({exc}); replace it with a valid JPEG or PNG or "
            "remove it from the data set."
        ) from exc


def instance_rle(segmentation: Segmentation, height: int, width: int) -> dict[str, Any]:
    """Return the compressed RLE of a polygon list or an RLE segmentation."""
    if isinstance(segmentation, dict):
        counts = segmentation["counts"]
        if isinstance(counts, list):
            return mask_utils.frPyObjects(segmentation, height, width)  # type: ignore[no-any-return]
        return {"size": segmentation["size"], "counts": counts.encode("ascii")}
    return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))  # type: ignore[no-any-return]


def decode_rles(rles: list[dict[str, Any]]) -> np.ndarray:
    """Decode RLEs to a `[H, W, N]` uint8 array."""
    with warnings.catch_warnings():
        # pycocotools 2.0.x calls np.array(copy=False) on NumPy 2; harmless, but noisy.
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rles)  # type: ignore[no-any-return]


def pennfudan_instances(mask_path: Path) -> np.ndarray:
    """Return the instance masks `[N, H, W]` (bool) of a PennFudan mask file."""
    mask = np.asarray(decode_image(mask_path))
    if mask.ndim == 3:
        mask = mask[..., 0]
    ids = [v for v in np.unique(mask) if v != 0]
    if not ids:
        return np.zeros((0, *mask.shape), dtype=bool)
    return np.stack([mask == v for v in ids])


def coco_ground_truth(index: DatasetIndex) -> dict[str, Any]:
    """Return the COCO ground-truth dict of a channel (RLE masks), for pycocotools."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for record in index.images:
        images.append({"id": record.id, "width": record.width, "height": record.height})
        if record.mask_path is not None:
            masks = pennfudan_instances(record.mask_path)
            rles = [
                (
                    index.categories[0].id,
                    mask_utils.encode(np.asfortranarray(m.astype(np.uint8))),
                    False,
                )
                for m in masks
            ]
        else:
            rles = [
                (
                    inst.category_id,
                    instance_rle(inst.segmentation, record.height, record.width),
                    inst.iscrowd,
                )
                for inst in record.instances
            ]
        for category_id, rle, crowd in rles:
            area = float(mask_utils.area(rle))
            if area <= 0:
                continue
            box = [float(v) for v in mask_utils.toBbox(rle)]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": record.id,
                    "category_id": category_id,
                    "segmentation": rle,
                    "area": area,
                    "bbox": box,
                    "iscrowd": int(crowd),
                }
            )
    categories = [{"id": c.id, "name": c.name} for c in index.categories]
    return {"images": images, "annotations": annotations, "categories": categories}


class MaskDataset(torch.utils.data.Dataset[tuple[torch.Tensor, Target]]):
    """Decoded samples of a `DatasetIndex` as torchvision detection `(image, target)` pairs.

    Crowd regions and instances whose mask is empty are left out of the training targets.
    """

    def __init__(
        self,
        index: DatasetIndex,
        label_of: dict[int, int],
        augment: Callable[[torch.Tensor, Target], tuple[torch.Tensor, Target]] | None = None,
    ) -> None:
        """Wrap `index`, mapping category ids through `label_of`, with optional `augment`."""
        self.index = index
        self.label_of = label_of
        self.augment = augment

    def __len__(self) -> int:
        """Number of images."""
        return len(self.index.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Target]:
        """Decode image `i` and build its target."""
        record = self.index.images[i]
        image = image_to_tensor(decode_image(record.path))
        height, width = image.shape[-2:]
        if record.mask_path is not None:
            masks_np = pennfudan_instances(record.mask_path)
            labels = [self.label_of[self.index.categories[0].id]] * len(masks_np)
        else:
            kept = [inst for inst in record.instances if not inst.iscrowd]
            labels = [self.label_of[inst.category_id] for inst in kept]
            if kept:
                rles = [instance_rle(inst.segmentation, height, width) for inst in kept]
                masks_np = np.moveaxis(decode_rles(rles), -1, 0).astype(bool)
            else:
                masks_np = np.zeros((0, height, width), dtype=bool)
        masks = torch.from_numpy(np.ascontiguousarray(masks_np, dtype=np.uint8))
        boxes = boxes_from_masks(masks)
        keep = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
        target: Target = {
            "boxes": boxes[keep],
            "labels": torch.tensor(labels, dtype=torch.int64).reshape(-1)[keep],
            "masks": masks[keep],
            "image_id": record.id,
        }
        if self.augment is not None:
            image, target = self.augment(image, target)
        return image, target


def collate(
    batch: Sequence[tuple[torch.Tensor, Target]],
) -> tuple[tuple[torch.Tensor, ...], tuple[Target, ...]]:
    """Keep a batch as a tuple of images and a tuple of targets (images differ in size)."""
    images, targets = zip(*batch, strict=True)
    return tuple(images), tuple(targets)
