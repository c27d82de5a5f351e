"""Local CodeBuild: build the image with Docker when one answers, else snapshot ``container/``.

A local "image" is a snapshot of the repository's ``container/`` folder stored under
``<root>/images/<repository>/<tag>/`` and addressed as ``local/<repository>:<tag>`` with
``tag = <commit[:7]>-<sha256 of the folder's files>[:12]``. The same content gives the same tag,
so a snapshot is built once and never overwritten; the local training and serving handlers run
the code of the snapshot an ``ImageUri`` names (a run uses the code it was built from).

When a Docker engine answers (``docker info`` succeeds within a few seconds) the image is also
built from the snapshot with ``scripts/build-image.sh`` (the builder the Docker tests use: a
locally made base image, no registry, ``--network host``); a failed Docker build fails the build
task.

``start_build`` builds in a background thread and returns at once, as CodeBuild does; the build
is tagged with the request's ``IMAGE_TAG`` (what the start_build Lambda decided and returned as
``ImageUri``), else with the content tag. The state machine follows it as it follows a CodeBuild
build: ``batch_get_builds`` (and the engine handler of ``aws-sdk:codebuild:batchGetBuilds``)
reports ``IN_PROGRESS`` until the build ends ``SUCCEEDED`` or ``FAILED``. A build never answers
the state machine and never sees a task token.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workflow.checkout import checkout_root
from workflow.contracts import short_commit
from workflow.errors import NamingError, WorkflowError
from workflow.local.store import LocalStore, ObjectExistsError, publish_dir, temporary_sibling

logger = logging.getLogger(__name__)

# The one image builder of the repository (also used by the Docker tests): registry-free base,
# `--network host`, torch installed in the image.
BUILD_IMAGE_SCRIPT = checkout_root() / "scripts" / "build-image.sh"

LOCAL_REGISTRY = "local"
_IGNORED_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
_IGNORED_SUFFIXES = {".pyc", ".pyo"}
DOCKER_PROBE_SECONDS = 5.0


class ImageError(WorkflowError):
    """A local image URI cannot be resolved or built."""


def source_files(folder: Path) -> list[Path]:
    """Return the files of a source folder that make up an image, sorted."""
    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part in _IGNORED_PARTS for part in relative.parts):
            continue
        if path.suffix in _IGNORED_SUFFIXES or not path.is_file():
            continue
        files.append(path)
    return files


def content_hash(folder: Path) -> str:
    """Return the SHA-256 over the relative paths, modes and bytes of a folder's files."""
    digest = hashlib.sha256()
    for path in source_files(folder):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(b"x" if path.stat().st_mode & 0o111 else b"-")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _tag_commit(commit: str) -> str:
    """Return the commit part of an image tag: `short_commit`, or ``unknown`` when none."""
    try:
        return short_commit(commit)
    except NamingError:
        return "unknown"


class LocalImages:
    """Snapshots of ``container/`` addressed as ``local/<repository>:<tag>``.

    Args:
        store: The local store (snapshots live in ``<root>/images/``).
        source: The ``container/`` folder of the repository.
        repository: The image repository name (config ``ecr_repository``).
    """

    def __init__(self, store: LocalStore, source: Path, repository: str) -> None:
        self.store = store
        self.source = Path(source).resolve()
        self.repository = repository
        self._warned: set[str] = set()

    def tag_for(self, commit: str) -> str:
        """Return the tag the current source gets for ``commit``."""
        return f"{_tag_commit(commit)}-{content_hash(self.source)[:12]}"

    def uri(self, tag: str) -> str:
        """Return the image URI of a tag."""
        return f"{LOCAL_REGISTRY}/{self.repository}:{tag}"

    def folder(self, tag: str) -> Path:
        """Return the snapshot folder of a tag."""
        return self.store.root / "images" / self.repository / tag

    def snapshot(self, commit: str, tag: str | None = None) -> str:
        """Snapshot the source for ``commit`` (once per content) and return its image URI.

        Args:
            commit: The commit the image is built from.
            tag: The tag to publish it under (the one the start_build Lambda chose); it becomes
                a link to the content's snapshot, so the same content is stored once. Default:
                the content tag.

        Raises:
            ImageError: The source has no ``train`` program, or ``tag`` names other content.
        """
        if not (self.source / "mask_r_cnn" / "train").is_file():
            raise ImageError(
                f"{self.source} has no mask_r_cnn/train; run from the repository root "
                "or set the container folder."
            )
        uri = self._snapshot_content(commit)
        if tag is None or uri == self.uri(tag):
            return uri
        content_tag = uri.rsplit(":", 1)[1]
        alias = self.folder(tag)
        try:
            alias.symlink_to(content_tag)  # relative: the folder beside it; never replaced
        except FileExistsError:
            if alias.resolve() != self.folder(content_tag).resolve():
                raise ImageError(
                    f"image {self.uri(tag)} exists already with other content; start the build "
                    "again (it picks a new tag)."
                ) from None
        return self.uri(tag)

    def _snapshot_content(self, commit: str) -> str:
        tag = self.tag_for(commit)
        target = self.folder(tag)
        if target.is_dir():
            logger.info("image %s exists already; reusing it", self.uri(tag))
            return self.uri(tag)
        tmp = temporary_sibling(target)
        try:
            for path in source_files(self.source):
                destination = tmp / path.relative_to(self.source)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, destination)
            try:
                publish_dir(tmp, target, self.uri(tag))
            except ObjectExistsError:
                logger.info("image %s was built concurrently; reusing it", self.uri(tag))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        logger.info("built local image %s", self.uri(tag))
        return self.uri(tag)

    def resolve(self, image_uri: str) -> Path:
        """Return the folder holding ``mask_r_cnn/{train,serve}`` for an image URI.

        ``local/<repository>:<tag>`` resolves to its snapshot; any other URI (an ECR image of a
        definition run with ``exec``) runs the repository's ``container/`` folder, with a warning.

        Raises:
            ImageError: When a ``local/`` image has no snapshot.
        """
        if image_uri.startswith(LOCAL_REGISTRY + "/"):
            name, _, tag = image_uri[len(LOCAL_REGISTRY) + 1 :].partition(":")
            folder = self.store.root / "images" / name / (tag or "latest")
            if not (folder / "mask_r_cnn").is_dir():
                raise ImageError(
                    f"local image {image_uri} does not exist under {folder.parent}; build it "
                    "(run the Build state, or leave ImageUri out of the execution input)."
                )
            return folder
        if image_uri not in self._warned:
            self._warned.add(image_uri)
            logger.warning(
                "image %s is not a local image; running the code of %s instead",
                image_uri,
                self.source,
            )
        return self.source


def docker_available(timeout: float = DOCKER_PROBE_SECONDS) -> bool:
    """Whether a Docker engine answers ``docker info`` within ``timeout`` seconds."""
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "info"], capture_output=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@dataclass
class LocalBuild:
    """One build: what ``start_build`` asked for and where it stands (CodeBuild's fields)."""

    build_id: str
    arn: str
    project: str
    commit: str
    tag: str | None
    status: str = "IN_PROGRESS"
    phase: str = "BUILD"
    image_uri: str | None = None
    message: str | None = None
    environment: dict[str, str] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        """The build as ``codebuild.batch_get_builds`` returns it (camelCase)."""
        build: dict[str, Any] = {
            "id": self.build_id,
            "arn": self.arn,
            "projectName": self.project,
            "buildStatus": self.status,
            "currentPhase": self.phase,
            "buildComplete": self.status != "IN_PROGRESS",
            "sourceVersion": self.commit,
            "environment": {
                "environmentVariables": [
                    {"name": k, "value": v, "type": "PLAINTEXT"}
                    for k, v in sorted(self.environment.items())
                ]
            },
        }
        if self.image_uri:
            build["exportedEnvironmentVariables"] = [{"name": "IMAGE_URI", "value": self.image_uri}]
        if self.message:
            build["phases"] = [
                {
                    "phaseType": "BUILD",
                    "phaseStatus": "FAILED",
                    "contexts": [
                        {"statusCode": "COMMAND_EXECUTION_ERROR", "message": self.message}
                    ],
                }
            ]
        return build


class LocalBuilder:
    """The local CodeBuild project: ``start_build`` builds in a thread; ``batch_get_builds`` reads.

    Args:
        images: The local images.
        use_docker: ``True``/``False`` forces the Docker build on or off; ``None`` probes.
        region: Region of the build ARNs.
        account_id: Account of the build ARNs.
    """

    def __init__(
        self,
        images: LocalImages,
        use_docker: bool | None = None,
        region: str = "us-east-1",
        account_id: str = "000000000000",
    ) -> None:
        self.images = images
        self._use_docker = use_docker
        self.region = region
        self.account_id = account_id
        self._threads: list[threading.Thread] = []
        self._builds: dict[str, LocalBuild] = {}
        self._lock = threading.Lock()

    def start_build(self, **request: Any) -> dict[str, Any]:
        """The boto3 ``codebuild.start_build`` call: start a build and return ``{"build": ...}``."""
        project = str(request.get("projectName") or "local")
        overrides = environment_overrides(request)
        commit = overrides.get("COMMIT_ID") or str(request.get("sourceVersion") or "unknown")
        build_id = f"{project}:{uuid.uuid4()}"
        arn = f"arn:aws:codebuild:{self.region}:{self.account_id}:build/{build_id}"
        build = LocalBuild(
            build_id, arn, project, commit, overrides.get("IMAGE_TAG"), environment=overrides
        )
        with self._lock:
            self._builds[build_id] = build
            answer = {"build": build.to_api()}  # as started: the thread may end at once
        thread = threading.Thread(target=self._run, args=(build,), name="local-build", daemon=True)
        self._threads.append(thread)
        thread.start()
        return answer

    def batch_get_builds(self, ids: list[str]) -> dict[str, Any]:
        """The boto3 ``codebuild.batch_get_builds`` call: ``{"builds", "buildsNotFound"}``."""
        with self._lock:
            found = [self._builds[i].to_api() for i in ids if i in self._builds]
            missing = [i for i in ids if i not in self._builds]
        return {"builds": found, "buildsNotFound": missing}

    def describe_builds(self, params: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
        """The engine handler of ``aws-sdk:codebuild:batchGetBuilds`` (PascalCase, as AWS)."""
        ids = params.get("Ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            from workflow.local.engine import TaskFailed

            raise TaskFailed(
                "CodeBuild.InvalidInputException",
                f"Ids = {ids!r} is not a list of build ids; pass e.g. "
                '"Ids.$": "States.Array($.Build.BuildId)".',
            )
        return dict(pascal_case(self.batch_get_builds(ids)))

    def build(self, commit: str, tag: str | None = None) -> str:
        """Build the image for ``commit`` synchronously and return its URI."""
        uri = self.images.snapshot(commit, tag)
        use_docker = docker_available() if self._use_docker is None else self._use_docker
        if use_docker:
            self._docker_build(uri, commit)
        return uri

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the builds started so far (tests, shutdown)."""
        for thread in list(self._threads):
            thread.join(timeout)

    def _run(self, build: LocalBuild) -> None:
        try:
            uri = self.build(build.commit, build.tag)
        except Exception as exc:
            logger.error("local build %s failed: %s", build.build_id, exc)
            with self._lock:
                build.status, build.phase, build.message = "FAILED", "COMPLETED", str(exc)
            return
        with self._lock:
            build.status, build.phase, build.image_uri = "SUCCEEDED", "COMPLETED", uri

    def _docker_build(self, uri: str, commit: str) -> None:
        context = self.images.resolve(uri)
        logger.info("building the Docker image %s from %s", uri, context)
        result = subprocess.run(
            ["bash", str(BUILD_IMAGE_SCRIPT), uri, commit, str(context)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-5:])
            raise ImageError(f"docker build of {uri} failed (exit {result.returncode}): {tail}")


def environment_overrides(request: Mapping[str, Any]) -> dict[str, str]:
    """Return a ``start_build`` request's ``environmentVariablesOverride`` as a dict."""
    return {
        str(item.get("name")): str(item.get("value"))
        for item in request.get("environmentVariablesOverride") or []
    }


def pascal_case(value: Any) -> Any:
    """Capitalise the keys of an API answer, as Step Functions' ``aws-sdk`` integrations do."""
    if isinstance(value, Mapping):
        return {k[:1].upper() + k[1:]: pascal_case(v) for k, v in value.items()}
    if isinstance(value, list):
        return [pascal_case(v) for v in value]
    return value
