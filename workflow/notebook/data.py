"""COCO splits for notebooks: from a folder, the local store (``s3://`` in local mode) or S3.

A split is a folder (or ``s3://`` prefix) holding ``annotations.json`` beside its images, whose
``file_name``s are relative to it (docs/architecture.md: the test split keeps its images under
``images/``). :func:`dataset_splits` finds the splits of a data set: the synthetic one of the
local store (made on first use, content-addressed, so notebook 02 trains on the same files), a
folder with ``train/``, ``validation/``, ``test/`` sub-folders, or one split folder.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflow.notebook.session import NotebookError, Session
from workflow.notebook.tables import Table

if TYPE_CHECKING:
    from PIL import Image

ANNOTATIONS = "annotations.json"
SPLITS = ("train", "validation", "test")
Reader = Callable[[str], bytes]


@dataclass(frozen=True)
class CocoSplit:
    """One COCO split.

    Attributes:
        location: The folder or ``s3://`` prefix (ending in ``/``) of the split.
        document: The parsed ``annotations.json``.
        reader: Returns the bytes of a file of the split, by its relative name.
    """

    location: str
    document: Mapping[str, Any]
    reader: Reader

    @property
    def images(self) -> list[dict[str, Any]]:
        """The ``images`` entries."""
        return list(self.document.get("images", []))

    @property
    def annotations(self) -> list[dict[str, Any]]:
        """The ``annotations`` entries."""
        return list(self.document.get("annotations", []))

    @cached_property
    def category_names(self) -> dict[int, str]:
        """Category id -> name."""
        return {int(c["id"]): str(c.get("name", c["id"])) for c in self.document["categories"]}

    @cached_property
    def _by_image(self) -> dict[Any, list[dict[str, Any]]]:
        grouped: dict[Any, list[dict[str, Any]]] = {}
        for annotation in self.annotations:
            grouped.setdefault(annotation["image_id"], []).append(annotation)
        return grouped

    def annotations_of(self, image: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Return the annotations of one image."""
        return list(self._by_image.get(image["id"], []))

    def image_bytes(self, image: Mapping[str, Any]) -> bytes:
        """Return the encoded file of one image."""
        return self.reader(str(image["file_name"]))

    def load_image(self, image: Mapping[str, Any]) -> Image.Image:
        """Return one image as RGB."""
        from PIL import Image

        return Image.open(io.BytesIO(self.image_bytes(image))).convert("RGB")


def content_type(file_name: str) -> str:
    """Return the HTTP content type of an image file name (PNG or JPEG)."""
    return "image/png" if file_name.lower().endswith(".png") else "image/jpeg"


def _folder_reader(folder: Path) -> Reader:
    def read(name: str) -> bytes:
        path = folder / name
        if not path.is_file():
            raise NotebookError(
                f"{path} does not exist; the annotations of {folder} name a file that is "
                "missing, so re-create or re-download the data set."
            )
        return path.read_bytes()

    return read


def _s3_reader(prefix: str) -> Reader:
    import boto3

    from workflow.local.store import parse_s3_uri

    bucket, key = parse_s3_uri(prefix)
    client = boto3.client("s3")

    def read(name: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return bytes(client.get_object(Bucket=bucket, Key=key + name)["Body"].read())
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                raise NotebookError(
                    f"s3://{bucket}/{key}{name} does not exist; upload the data set there or "
                    "point the data parameter at the right prefix."
                ) from exc
            raise

    return read


def _as_prefix(location: str) -> str:
    return location if location.endswith("/") else location + "/"


def split_reader(session: Session, location: str | Path) -> tuple[str, Reader]:
    """Return ``(location, reader)`` of a split folder or ``s3://`` prefix.

    In local mode an ``s3://`` URI is read from the local store; in aws mode from S3.
    """
    text = str(location)
    if text.startswith("s3://"):
        prefix = _as_prefix(text)
        if session.local:
            return prefix, _folder_reader(session.store().path(prefix))
        return prefix, _s3_reader(prefix)
    folder = Path(text).expanduser()
    if not folder.is_absolute():
        folder = (session.project / folder).resolve()
    return str(folder), _folder_reader(folder)


def load_split(session: Session, location: str | Path) -> CocoSplit:
    """Load the split at ``location`` (a folder or ``s3://`` prefix holding annotations.json).

    Raises:
        NotebookError: When there is no readable COCO ``annotations.json``.
    """
    where, reader = split_reader(session, location)
    try:
        document = json.loads(reader(ANNOTATIONS))
    except NotebookError as exc:
        raise NotebookError(
            f"{where} has no {ANNOTATIONS}; point the data parameter at a COCO split folder "
            "(annotations.json beside the images) or at a folder of train/validation/test "
            "splits, or leave it empty for the synthetic data set."
        ) from exc
    except json.JSONDecodeError as exc:
        raise NotebookError(
            f"{where}{ANNOTATIONS} is not JSON ({exc.msg} at line {exc.lineno}); it must be a "
            "COCO annotations file."
        ) from exc
    missing = [k for k in ("images", "annotations", "categories") if k not in document]
    if not isinstance(document, dict) or missing:
        raise NotebookError(
            f"{where}{ANNOTATIONS} lacks the COCO lists {missing or 'images'}; write it with "
            "'python -m mask_r_cnn.synthetic' or another COCO exporter."
        )
    return CocoSplit(location=where, document=document, reader=reader)


def dataset_splits(session: Session, data: str | Path = "") -> dict[str, CocoSplit]:
    """Return the splits of a data set, by name.

    Args:
        session: The notebook session.
        data: Empty: in local mode the synthetic data set of the store (made when missing, sized
            by ``local.dataset``), in aws mode ``s3://<bucket>/<prefix>/data/``. Otherwise a
            folder or ``s3://`` prefix holding ``train/``, ``validation/`` and ``test/`` split
            folders (those present), or a single split folder (returned as ``"data"``).

    Raises:
        NotebookError: When no split is found at ``data``.
    """
    if not str(data):
        if session.local:
            from workflow.local.pipeline import ensure_dataset

            uris = ensure_dataset(session.store(), session.config)
            locations = {
                "train": uris["TrainingData"],
                "validation": uris["ValidationData"],
                "test": uris["TestData"],
            }
        else:
            locations = {split: session.config.s3.uri("data", split) for split in SPLITS}
        return {split: load_split(session, uri) for split, uri in locations.items()}
    text = str(data)
    base = _as_prefix(text) if text.startswith("s3://") else text.rstrip("/")
    splits: dict[str, CocoSplit] = {}
    for split in SPLITS:
        location = f"{base}{split}/" if text.startswith("s3://") else str(Path(base) / split)
        try:
            splits[split] = load_split(session, location)
        except NotebookError:
            continue
    if splits:
        return splits
    return {"data": load_split(session, data)}


def class_counts(split: CocoSplit) -> Table:
    """Return a table of instances and images per category (categories without any included)."""
    instances = dict.fromkeys(split.category_names, 0)
    images: dict[int, set[Any]] = {c: set() for c in split.category_names}
    for annotation in split.annotations:
        category = int(annotation["category_id"])
        instances[category] = instances.get(category, 0) + 1
        images.setdefault(category, set()).add(annotation["image_id"])
    rows = [
        [split.category_names.get(c, str(c)), instances[c], len(images.get(c, ()))]
        for c in sorted(instances)
    ]
    return Table(["category", "instances", "images"], rows, title=f"classes of {split.location}")


def split_summary(splits: Mapping[str, CocoSplit]) -> Table:
    """Return a table of images, annotations and empty images per split."""
    rows = []
    for name, split in splits.items():
        annotated = {a["image_id"] for a in split.annotations}
        empty = sum(1 for image in split.images if image["id"] not in annotated)
        rows.append([name, len(split.images), len(split.annotations), empty, split.location])
    return Table(["split", "images", "annotations", "images without objects", "location"], rows)
