"""The local artifact store: ``s3://bucket/key`` <-> ``<root>/s3/bucket/key``.

The store is what S3 is to the AWS runtime. It is kept across runs (default root ``.mlops/`` in
the repository, config key ``local.root``) and a run never overwrites another run's artifacts:
:meth:`LocalStore.put_bytes` and :meth:`LocalStore.put_file` refuse an existing key. Writes are
atomic (a temporary file in the same folder, then an exclusive hard link), so a reader never sees
a half-written object.

Layout of the root::

    s3/<bucket>/<key>           objects (the only part addressed by s3:// URIs)
    images/<repo>/<tag>/         local "container images" (snapshots of container/)
    jobs/<training job>/         SAGEMAKER_BASE_DIR trees and logs of local training jobs
    sagemaker/<kind>/<name>.json records of models, endpoint configs, endpoints, jobs
    endpoints/<name>/            model folders and logs of local endpoints
    callbacks/                   task-token requests and responses (see callbacks.py)
    runs/<execution>/            execution history, summary and prediction PNG of a run
    outbox.jsonl                 SNS messages published locally
"""

from __future__ import annotations

import builtins
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workflow.errors import WorkflowError

S3_SCHEME = "s3://"


class StoreError(WorkflowError):
    """An object of the local store is missing, exists already, or is addressed wrongly."""


class ObjectExistsError(StoreError):
    """The key exists already; the store never overwrites an object."""


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into ``(bucket, key)``.

    Args:
        uri: An S3 URI; the key may be empty (``s3://bucket/``).

    Returns:
        The bucket and the key (without a leading slash).

    Raises:
        StoreError: When the value is not an ``s3://`` URI or names an unsafe path.
    """
    if not isinstance(uri, str) or not uri.startswith(S3_SCHEME):
        raise StoreError(f"{uri!r} is not an S3 URI (expected 's3://bucket/key').")
    bucket, _, key = uri[len(S3_SCHEME) :].partition("/")
    if not bucket or bucket in (".", "..") or "\\" in bucket:
        raise StoreError(f"{uri!r} has no valid bucket (expected 's3://bucket/key').")
    parts = [p for p in key.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise StoreError(f"{uri!r} contains '.' or '..' segments; use a plain key.")
    return bucket, key


class LocalStore:
    """S3-like object store on a local folder.

    Args:
        root: The store's root folder; created on first write.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    # -- folders of the root ------------------------------------------------------------------
    @property
    def s3_root(self) -> Path:
        """Folder holding the buckets."""
        return self.root / "s3"

    def folder(self, name: str) -> Path:
        """Return (and create) a top-level folder of the root such as ``jobs`` or ``runs``."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- addressing ---------------------------------------------------------------------------
    def path(self, uri: str) -> Path:
        """Return the local path of an ``s3://`` URI (the object or the prefix folder)."""
        bucket, key = parse_s3_uri(uri)
        return self.s3_root / bucket / key

    def uri(self, path: Path | str) -> str:
        """Return the ``s3://`` URI of a path inside the store's ``s3/`` folder."""
        resolved = Path(path).resolve()
        try:
            relative = resolved.relative_to(self.s3_root)
        except ValueError as exc:
            raise StoreError(f"{path} is not inside the store's s3 folder {self.s3_root}.") from exc
        text = relative.as_posix()
        bucket, _, key = text.partition("/")
        return f"{S3_SCHEME}{bucket}/{key}"

    # -- reading ------------------------------------------------------------------------------
    def exists(self, uri: str) -> bool:
        """Whether an object exists at ``uri`` (a prefix folder is not an object)."""
        return self.path(uri).is_file()

    def prefix_exists(self, uri: str) -> bool:
        """Whether at least one object lives under the prefix ``uri``."""
        return next(iter(self.iter_objects(uri)), None) is not None

    def get_bytes(self, uri: str) -> bytes:
        """Return the content of an object.

        Raises:
            StoreError: When no object exists at ``uri``.
        """
        path = self.path(uri)
        if not path.is_file():
            raise StoreError(f"no object at {uri} (looked for {path}).")
        return path.read_bytes()

    def get_json(self, uri: str) -> Any:
        """Return an object parsed as JSON."""
        return json.loads(self.get_bytes(uri))

    def iter_objects(self, prefix: str) -> Iterator[tuple[str, Path]]:
        """Yield ``(uri, path)`` of every object whose key starts with the prefix, sorted by key.

        As in S3, ``s3://b/data/tr`` matches ``data/train/x`` and ``data/tr.json``.
        """
        bucket, key = parse_s3_uri(prefix)
        bucket_dir = self.s3_root / bucket
        if not bucket_dir.is_dir():
            return
        base_key = key.rsplit("/", 1)[0] if "/" in key else ""
        base = bucket_dir / base_key
        if not base.is_dir():
            return
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            object_key = path.relative_to(bucket_dir).as_posix()
            if object_key.startswith(key) and not _is_temporary(path):
                yield f"{S3_SCHEME}{bucket}/{object_key}", path

    def list(self, prefix: str) -> builtins.list[str]:
        """Return the URIs of every object under the prefix, sorted."""
        return [uri for uri, _ in self.iter_objects(prefix)]

    # -- writing ------------------------------------------------------------------------------
    def put_bytes(self, uri: str, data: bytes) -> Path:
        """Write a new object atomically.

        Raises:
            ObjectExistsError: When the key exists already (the store never overwrites).
        """
        path = self.path(uri)
        if path.exists():
            raise _exists(uri)
        return write_new(path, data, uri)

    def put_json(self, uri: str, value: Any) -> Path:
        """Write a new JSON object (indented, UTF-8)."""
        return self.put_bytes(uri, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())

    def put_file(self, uri: str, source: Path, link: bool = False) -> Path:
        """Copy a local file into a new object (``link``: hard-link it when possible)."""
        path = self.path(uri)
        if path.exists():
            raise _exists(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        if link:
            try:
                link_exclusive(Path(source), path, uri)
                return path
            except ObjectExistsError:
                raise
            except OSError:
                pass  # another file system: copy below
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            link_exclusive(Path(tmp), path, uri)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return path

    def put_tree(self, prefix: str, source: Path) -> builtins.list[str]:
        """Copy every file under a local folder to ``prefix`` + relative path; all keys must be new.

        Returns:
            The URIs written.
        """
        prefix = prefix if prefix.endswith("/") else prefix + "/"
        files = sorted(p for p in Path(source).rglob("*") if p.is_file())
        clashes = [prefix + p.relative_to(source).as_posix() for p in files]
        existing = [uri for uri in clashes if self.path(uri).exists()]
        if existing:
            raise _exists(existing[0])
        for path, uri in zip(files, clashes, strict=True):
            self.put_file(uri, path)
        return clashes

    def mirror_to(self, source: Path, prefix: str) -> int:
        """Make ``prefix`` hold the files of ``source`` (checkpoint sync; replaces changed files).

        This is the one place where objects are replaced: SageMaker syncs the checkpoint folder
        both ways, and a restarted job must see the latest checkpoint. Call it once the writer
        is done (the end of a job): files are hard-linked when possible (checkpoints are
        hundreds of MB) and replaced atomically (rename).

        Returns:
            The number of files published.
        """
        prefix = prefix if prefix.endswith("/") else prefix + "/"
        published = 0
        for path in sorted(p for p in Path(source).rglob("*") if p.is_file()):
            target = self.path(prefix + path.relative_to(source).as_posix())
            if target.is_file() and _same_file(path, target):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.parent / f".tmp-{uuid.uuid4().hex[:12]}"
            try:
                os.link(path, tmp)
            except OSError:
                shutil.copyfile(path, tmp)
            os.replace(tmp, target)
            published += 1
        return published

    def materialize(self, prefix: str, destination: Path) -> int:
        """Copy every object under ``prefix`` into ``destination``.

        Objects keep their path relative to the prefix's last ``/``, as SageMaker's File mode
        does for an ``S3Prefix`` channel. Copies, never hard links: a reader that writes into
        its files (a job rewriting its channel or checkpoints) must not change the stored object.

        Returns:
            The number of files placed.
        """
        _, key = parse_s3_uri(prefix)
        base_key = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
        destination.mkdir(parents=True, exist_ok=True)
        count = 0
        for uri, path in self.iter_objects(prefix):
            relative = parse_s3_uri(uri)[1][len(base_key) :]
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                continue
            shutil.copyfile(path, target)
            count += 1
        return count


def link_exclusive(tmp: Path, path: Path, label: str) -> None:
    """Publish ``tmp`` as ``path`` atomically; fail if ``path`` appeared meanwhile."""
    try:
        os.link(tmp, path)
    except FileExistsError as exc:
        raise _exists(label) from exc


def write_new(path: Path, data: bytes, label: str | None = None) -> Path:
    """Write a file that must not exist yet, atomically: a reader sees all of it or nothing.

    The bytes go to a temporary file beside ``path`` (the store's listings skip ``.tmp-``
    names), which is then hard-linked to ``path``; the link fails if ``path`` exists, so nothing
    is ever overwritten, and the temporary file is removed whatever happens.

    Raises:
        ObjectExistsError: ``path`` exists (named as ``label``, default the path).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        link_exclusive(Path(tmp), path, label or str(path))
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def json_bytes(value: Any, indent: int = 2) -> bytes:
    """The UTF-8 of a JSON document as records are written (sorted keys, trailing newline)."""
    return (json.dumps(value, indent=indent, sort_keys=True, default=str) + "\n").encode()


def publish_dir(tmp: Path, path: Path, label: str) -> None:
    """Rename a fully written temporary folder to ``path``; fail if ``path`` exists."""
    if path.exists():
        raise _exists(label)
    try:
        os.rename(tmp, path)
    except OSError as exc:
        raise _exists(label) from exc


def temporary_sibling(path: Path) -> Path:
    """Return a fresh temporary folder beside ``path`` (same file system, for :func:`publish_dir`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


def write_json_atomic(path: Path, value: Any) -> None:
    """Write (or replace) a JSON record atomically; for records, not for artifacts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(json_bytes(value))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)  # only left when writing failed


def _is_temporary(path: Path) -> bool:
    return any(part.startswith(".tmp-") for part in path.parts)


def _same_file(a: Path, b: Path) -> bool:
    sa, sb = a.stat(), b.stat()
    if (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino):
        return True
    if sa.st_size != sb.st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            chunk = fa.read(1 << 20)
            if chunk != fb.read(1 << 20):
                return False
            if not chunk:
                return True


def _exists(uri: str) -> ObjectExistsError:
    return ObjectExistsError(
        f"{uri} exists already and the local store never overwrites an artifact; "
        "use a new name (a new job name or commit) or delete it by hand."
    )
