"""Find, read and validate the data set of a channel folder: COCO or PennFudan.

A channel folder holds either
- COCO: `annotations.json` (`images`, `annotations` with polygon or RLE `segmentation`,
  `categories`) beside the image files it names (`file_name` is relative to the folder), or
- PennFudan (the torchvision tutorial's layout): `PNGImages/<name>.png` and
  `PedMasks/<name>_mask.png`, one instance per non-zero mask value, one category `person`.

`load_channel` validates everything it can without decoding pixels (`annotation_checks`) and
raises `ChannelError`/`DataError` with one sentence naming the file, the value and the fix.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .annotation_checks import (
    check_image_file,
    check_polygon,
    check_rle,
    image_path,
    is_int,
    read_json,
    short_repr,
)
from .dataset_index import (
    ANNOTATIONS_FILE,
    MAX_ID,
    MAX_SIDE,
    PENNFUDAN_CATEGORY_ID,
    PENNFUDAN_CATEGORY_NAME,
    PENNFUDAN_IMAGES,
    PENNFUDAN_MASKS,
    Category,
    DatasetIndex,
    ImageRecord,
    Instance,
    Segmentation,
    labels_for,
)
from .errors import ChannelError, DataError

logger = logging.getLogger(__name__)


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


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


def _load_coco(path: Path, channel: str) -> DatasetIndex:
    root = path.parent
    where_file = _rel(path, root)
    fix = f"fix or remove that annotation in {where_file}."
    doc = read_json(path)
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
            or not is_int(cat.get("id"))
            or not isinstance(cat.get("name"), str)
        ):
            raise DataError(
                f"{where_file}: categories[{i}] = {short_repr(cat, 80)} needs an integer 'id' (at "
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
            or not is_int(img.get("id"))
            or not isinstance(img.get("file_name"), str)
        ):
            raise DataError(
                f"{where_file}: images[{i}] = {short_repr(img, 80)} needs an integer 'id' (at most "
                f"{MAX_ID}) and a 'file_name'; fix that image entry."
            )
        if img["id"] in images:
            raise DataError(
                f"{where_file}: image id {img['id']} appears twice; give each image a unique id."
            )
        for key in ("width", "height"):
            if key in img and not (is_int(img[key], MAX_SIDE) and img[key] > 0):
                raise DataError(
                    f"{where_file}: image {img['id']} has {key} = {short_repr(img[key])}; set it to "
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
        sizes[image_id] = check_image_file(
            paths[image_id],
            f"{where_file}: image {image_id}",
            img.get("width"),
            img.get("height"),
        )
    for i, ann in enumerate(raw_annotations):
        ann_id = ann.get("id", i) if isinstance(ann, dict) else i
        ann_id = ann_id if is_int(ann_id) else i
        where = f"{where_file}: annotation {ann_id}"
        if not isinstance(ann, dict):
            raise DataError(f"{where} is not an object; {fix}")
        ann_image = ann.get("image_id")
        if not is_int(ann_image) or ann_image not in images:
            raise DataError(
                f"{where} names image_id {short_repr(ann_image)}, which is not in 'images'; add that image "
                f"or {fix}"
            )
        category_id = ann.get("category_id")
        if not is_int(category_id) or category_id not in categories:
            raise DataError(
                f"{where} names category_id {short_repr(category_id)}, which is not in 'categories' "
                f"(known: {sorted(categories)}); add the category or {fix}"
            )
        seg = ann.get("segmentation")
        width, height = sizes[ann_image]
        if isinstance(seg, dict):
            segmentation: Segmentation = check_rle(seg, height, width, where, fix)
        elif isinstance(seg, list):
            segmentation = check_polygon(seg, where, fix)
        else:
            raise DataError(
                f"{where} has no usable 'segmentation' ({type(seg).__name__}); instance "
                f"segmentation needs a polygon list or an RLE; {fix}"
            )
        iscrowd = ann.get("iscrowd", 0)
        if iscrowd not in (0, 1, True, False):
            raise DataError(f"{where} has iscrowd = {short_repr(iscrowd)} (expected 0 or 1); {fix}")
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
        width, height = check_image_file(path, where, None, None)
        check_image_file(mask_path, f"{PENNFUDAN_MASKS}/{mask_path.name}", width, height)
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
