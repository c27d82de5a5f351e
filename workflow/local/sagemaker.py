"""Local SageMaker: training jobs, models, endpoint configs, endpoints and batch transform.

Each handler is plain Python with the engine's ``start(params, ctx)`` / ``poll(submitted, ctx)``
/ ``cancel(submitted, ctx)`` methods, and answers with dicts shaped like the real API
(``CreateTrainingJob`` -> ``{"TrainingJobArn"}``, ``.sync`` poll -> ``DescribeTrainingJob``).

What runs where:

- A training job is the image's ``train`` program, one process per host (``InstanceCount``), each
  in its own ``SAGEMAKER_BASE_DIR`` tree ``<root>/jobs/<job>/algo-<i>/`` built from the request
  (``hyperparameters.json``, ``inputdataconfig.json``, ``resourceconfig.json``, the channels
  copied from the local store (a job's writes never reach the stored object), the checkpoints synced from ``CheckpointConfig.S3Uri``).
  Hosts talk over loopback (``MASTER_ADDR=127.0.0.1``, a free ``MASTER_PORT``).
- An endpoint is the image's ``serve`` program on a free 127.0.0.1 port behind a router process
  (the endpoint's URL, `workflow.local.router`), each in its own session so that they can
  outlive the run (``--keep-endpoint``); their pids, ports and URL are recorded under
  ``<root>/sagemaker/endpoints/`` for ``python -m workflow endpoints list|stop``.
- A transform job starts a serving process for the model, sends each input object (one request
  per object, or per line with ``SplitType: Line``), writes ``<output>/<file>.out`` and stops it.
- An image that is neither the kit's nor mapped by ``local.images`` runs as SageMaker runs it,
  ``docker run <image> train|serve`` on the same trees (`workflow.local.sagemaker_docker`).

Errors follow what Step Functions reports for SageMaker: a rejected request (a name in use, a
missing model) is ``SageMaker.AmazonSageMakerException``; a failed ``.sync`` job is
``States.TaskFailed`` whose cause is the job's ``FailureReason`` (the ``output/failure`` text);
``DescribeEndpoint`` of a missing endpoint through ``aws-sdk`` is ``SageMaker.SageMakerException``
with AWS's message ``Could not find endpoint "<arn>".`` (see docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workflow.contracts import is_valid_name
from workflow.http import answers_ok
from workflow.local.docker_cli import DockerCli, ForeignImage
from workflow.local.processes import (
    LogSink,
    base_environ,
    free_port,
    pid_alive,
    start_logged,
    stop_process_group,
)
from workflow.local.store import (
    LocalStore,
    ObjectExistsError,
    StoreError,
    json_bytes,
    parse_s3_uri,
    publish_dir,
    temporary_sibling,
    write_json_atomic,
    write_new,
)

logger = logging.getLogger(__name__)

ImageResolver = Callable[[str], Path]

SAGEMAKER_ERROR = "SageMaker.AmazonSageMakerException"
SDK_ERROR = "SageMaker.SageMakerException"
TASK_FAILED = "States.TaskFailed"
FAILURE_REASON_LIMIT = 1024


def task_failed(error: str, cause: str) -> Exception:
    from workflow.local.engine import TaskFailed

    return TaskFailed(error, cause)


def stderr_sink(source: str, line: str) -> None:
    """Default log sink: print the line on stderr prefixed with its source."""
    print(f"[{source}] {line}", file=sys.stderr, flush=True)


def now_ms() -> int:
    """Return the time as epoch milliseconds, as Step Functions renders SageMaker timestamps."""
    return int(time.time() * 1000)


@dataclass(frozen=True, kw_only=True)
class SageMakerSettings:
    """What the local SageMaker needs besides the store.

    Attributes:
        region: Region of the ARNs.
        account_id: Account of the ARNs.
        stop_grace_seconds: Seconds between SIGTERM and SIGKILL when a job or server stops.
        ping_timeout_seconds: How long a serving process may take to answer ``/ping``.
        python: Interpreter that runs the container's programs.
        reuse_servers: Keep a transform job's serving process warm for an endpoint of the same
            model (same image, model data and environment) instead of starting another one.
        warm_seconds: How long such a process waits to be reused before it is stopped.
        kit_repository: The ECR repository of the kit's own image (``ecr_repository``). When
            set, only the kit's images (``local/...`` or this repository) run the kit's code;
            another image fails its job instead of running the kit's code under its name.
            Empty: every image goes through the resolver.
        images: ``local.images``: image URI -> folder holding ``mask_r_cnn/train`` and
            ``mask_r_cnn/serve``, for images that are not the kit's.
        deployment_time_scale: ``local.deployment_time_scale``: multiplies the waits of a
            blue/green endpoint update (baking periods, termination wait, timeout).
    """

    region: str = "us-east-1"
    account_id: str = "000000000000"
    stop_grace_seconds: float = 10.0
    ping_timeout_seconds: float = 180.0
    python: str = field(default_factory=lambda: sys.executable)
    reuse_servers: bool = False
    warm_seconds: float = 120.0
    kit_repository: str = ""
    images: Mapping[str, str] = field(default_factory=dict)
    deployment_time_scale: float = 0.01

    def arn(self, kind: str, name: str) -> str:
        """Return the ARN of a SageMaker resource, e.g. ``training-job/<name>``."""
        return f"arn:aws:sagemaker:{self.region}:{self.account_id}:{kind}/{name.lower()}"


# The record collections of the hosting resources (``<root>/sagemaker/<collection>/``).
MODELS = "models"
CONFIGS = "endpoint-configs"
ENDPOINTS = "endpoints"


class Records:
    """JSON records of SageMaker resources under ``<root>/sagemaker/<kind>/<name>.json``."""

    def __init__(self, store: LocalStore) -> None:
        self.base = store.root / "sagemaker"
        self._lock = threading.Lock()

    def path(self, kind: str, name: str) -> Path:
        """Return the record file of a resource (found whatever the case of ``name``)."""
        if not is_valid_name(name or ""):
            raise task_failed(
                SAGEMAKER_ERROR,
                f"{kind} name {name!r} is invalid; use 1-63 letters, digits and hyphens "
                "starting and ending with a letter or digit.",
            )
        return self.base / kind / f"{self.stored_name(kind, name)}.json"

    def stored_name(self, kind: str, name: str) -> str:
        """Return the name a resource was created with, matching ``name`` in any case.

        SageMaker keeps a name's case but lower-cases it in the ARN, so two names differing
        only in case are one resource, and a name read back from an ARN must find it.
        """
        folder = self.base / kind
        if (folder / f"{name}.json").is_file() or not folder.is_dir():
            return name
        lowered = name.lower()
        for candidate in folder.glob("*.json"):
            if candidate.stem.lower() == lowered:
                return candidate.stem
        return name

    def create(self, kind: str, name: str, record: Mapping[str, Any], what: str) -> None:
        """Write a new record; a resource of that name must not exist (as in AWS)."""
        try:  # written whole, then linked: a reader never sees an empty or partial record
            write_new(self.path(kind, name), json_bytes(dict(record)))
        except ObjectExistsError:
            raise task_failed(
                SAGEMAKER_ERROR,
                f'Cannot create already existing {what} "{self._arn(record, name)}"; '
                "use a new name (every execution input derives new names from the commit).",
            ) from None

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """Return a record or ``None``."""
        path = self.path(kind, name)
        if not path.is_file():
            return None
        return dict(json.loads(path.read_text()))

    def update(self, kind: str, name: str, **changes: Any) -> dict[str, Any]:
        """Merge changes into an existing record and return it."""
        return self._merge(kind, name, changes, create=True) or {}

    def update_existing(self, kind: str, name: str, **changes: Any) -> dict[str, Any] | None:
        """Merge changes into a record that still exists; ``None`` (nothing written) once it was
        deleted, so a late writer never brings a deleted resource back."""
        return self._merge(kind, name, changes, create=False)

    def _merge(
        self, kind: str, name: str, changes: Mapping[str, Any], create: bool
    ) -> dict[str, Any] | None:
        with self._lock:
            record = self.get(kind, name)
            if record is None and not create:
                return None
            record = {**(record or {}), **changes, "LastModifiedTime": now_ms()}
            write_json_atomic(self.path(kind, name), record)
            return record

    def delete(self, kind: str, name: str) -> None:
        """Remove a record."""
        self.path(kind, name).unlink(missing_ok=True)

    def all(self, kind: str) -> list[dict[str, Any]]:
        """Return every record of a kind, sorted by name."""
        folder = self.base / kind
        if not folder.is_dir():
            return []
        return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]

    @staticmethod
    def _arn(record: Mapping[str, Any], name: str) -> str:
        for key, value in record.items():
            if key.endswith("Arn") and isinstance(value, str) and ":sagemaker:" in value:
                return value
        return name


@dataclass
class ServeProcess:
    """A running ``serve`` program on 127.0.0.1."""

    pid: int
    port: int
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    container: str | None = None  # the Docker container serving (an image not the kit's)

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(
        cls,
        settings: SageMakerSettings,
        code_dir: Path,
        base_dir: Path,
        log_path: Path,
        environment: Mapping[str, str] | None = None,
    ) -> ServeProcess:
        """Start ``<code_dir>/mask_r_cnn/serve`` with its model in ``<base_dir>/model``."""
        program = code_dir / "mask_r_cnn" / "serve"
        if not program.is_file():
            raise task_failed(
                SAGEMAKER_ERROR,
                f"the image's code folder {code_dir} has no mask_r_cnn/serve; rebuild the image.",
            )
        port = free_port()
        env = base_environ(
            {
                **(environment or {}),
                "SAGEMAKER_BASE_DIR": str(base_dir),
                "SAGEMAKER_BIND_TO_HOST": "127.0.0.1",
                "SAGEMAKER_BIND_TO_PORT": str(port),
                "MODEL_SERVER_WORKERS": "1",
                "MASK_R_CNN_NGINX": "0",
            }
        )
        popen = start_logged([settings.python, str(program)], log_path, env, cwd=base_dir)
        return cls(pid=popen.pid, port=port, log_path=log_path, popen=popen)

    def alive(self) -> bool:
        """Whether the server process still runs."""
        if self.popen is not None:
            return self.popen.poll() is None
        return pid_alive(self.pid)

    def wait_ready(
        self, timeout: float, cancelled: Callable[[], bool] = lambda: False
    ) -> str | None:
        """Wait until ``/ping`` answers 200.

        Returns:
            ``None`` when ready, else the reason it never became ready.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return (
                    f"the serving process exited before answering /ping; see its log "
                    f"{self.log_path}: {tail(self.log_path)}"
                )
            if cancelled():
                return "cancelled"
            if answers_ok(self.url + "/ping", timeout=2):
                return None
            time.sleep(0.1)
        return (
            f"the serving process did not answer /ping within {timeout:.0f} s; see {self.log_path}"
        )

    def stop(self, grace: float) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        stop_process_group(self.pid, grace)
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=1)

    def detach(self) -> None:
        """Let the server outlive this handle: its record (pid) owns it from now on.

        A daemon thread waits on the process, so that it is reaped whoever stops it (``endpoints
        stop`` from another terminal) and the dropped handle does not warn that it still runs.
        """
        popen, self.popen = self.popen, None
        if popen is not None:
            threading.Thread(target=popen.wait, name=f"reap-{self.pid}", daemon=True).start()


def tail(path: Path, lines: int = 5) -> str:
    """Return the last lines of a log file, joined with `` | ``."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def extract_model(store: LocalStore, model_data_url: str, destination: Path) -> None:
    """Place the files of a ``model.tar.gz`` of the store into ``destination`` (as SageMaker does).

    An archive is extracted once into ``<root>/cache/models/<key>/`` (the key covers its path,
    size and modification time) and hard-linked from there, so the transform job and the
    endpoint of one model do not each unpack ~100 MB.
    """
    try:
        archive = store.path(normalize_s3_uri(model_data_url))
    except StoreError as exc:
        raise task_failed(SAGEMAKER_ERROR, str(exc)) from exc
    if not archive.is_file():
        raise task_failed(
            SAGEMAKER_ERROR,
            f"Could not find model data at {model_data_url}; check the model's ModelDataUrl.",
        )
    cache = model_cache_dir(store, archive)
    if not cache.is_dir():
        tmp = temporary_sibling(cache)
        try:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(tmp, filter="data")
            with contextlib.suppress(StoreError):
                publish_dir(tmp, cache, str(cache))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    link_tree(cache, destination)


def model_cache_dir(store: LocalStore, archive: Path) -> Path:
    """Return the extraction cache folder of a model archive."""
    stat = archive.stat()
    key = hashlib.sha256(f"{archive}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    return store.root / "cache" / "models" / key[:24]


def seed_model_cache(store: LocalStore, archive: Path, model_dir: Path) -> None:
    """Fill the extraction cache of a new archive from the folder it was made of."""
    cache = model_cache_dir(store, archive)
    if cache.is_dir():
        return
    tmp = temporary_sibling(cache)
    try:
        link_tree(model_dir, tmp)
        with contextlib.suppress(StoreError):
            publish_dir(tmp, cache, str(cache))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def link_tree(source: Path, destination: Path) -> None:
    """Hard-link (else copy) every file of ``source`` into ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.rglob("*")):
        target = destination / path.relative_to(source)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)


def model_environment(model: Mapping[str, Any]) -> dict[str, str]:
    """Return the ``Environment`` of a model's primary container."""
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    return {str(k): str(v) for k, v in (container.get("Environment") or {}).items()}


def model_container(model: Mapping[str, Any]) -> dict[str, Any]:
    """Return the primary container of a model record."""
    return dict(model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0])


@dataclass
class LocalSageMaker:
    """Shared state of the local SageMaker handlers.

    Args:
        store: The local artifact store.
        resolve_image: Maps an image URI to the folder holding ``mask_r_cnn/{train,serve}``.
        settings: ARNs and timeouts.
        log_sink: Receives ``(source, line)`` for every training log line.
        docker: The Docker CLI that runs images other than the kit's.
    """

    store: LocalStore
    resolve_image: ImageResolver
    settings: SageMakerSettings = field(default_factory=SageMakerSettings)
    log_sink: LogSink | None = stderr_sink
    docker: DockerCli = field(default_factory=DockerCli)

    def __post_init__(self) -> None:
        self.records = Records(self.store)
        self.warm = WarmServers(self.settings)


def require_param(params: Mapping[str, Any], name: str, action: str) -> Any:
    """Return a required request parameter or fail like AWS's ValidationException."""
    value = params.get(name)
    if value in (None, ""):
        raise task_failed(
            SAGEMAKER_ERROR,
            f"{action} needs the parameter {name}; add it to the task's Parameters.",
        )
    return value


def uri_join(prefix: str, *parts: str) -> str:
    """Join an S3 prefix and key parts with single slashes."""
    text = prefix.rstrip("/")
    for part in parts:
        text += "/" + part.strip("/")
    return text


def new_id() -> str:
    """Return a short random id."""
    return uuid.uuid4().hex[:8]


# The HTTPS forms of an S3 location SageMaker accepts besides s3://bucket/key:
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html
_S3_HOST = r"s3(?:[.-][a-z0-9-]+)?\.amazonaws\.com(?:\.cn)?"
_VIRTUAL_HOSTED = re.compile(rf"https://(?P<bucket>[a-z0-9][a-z0-9.-]*)\.{_S3_HOST}/(?P<key>.*)")
_PATH_STYLE = re.compile(rf"https://{_S3_HOST}/(?P<bucket>[^/]+)/(?P<key>.*)")


def normalize_s3_uri(uri: Any) -> Any:
    """Return ``s3://bucket/key`` for the virtual-hosted and path-style HTTPS forms, else ``uri``."""
    if not isinstance(uri, str) or not uri.startswith("https://"):
        return uri
    match = _VIRTUAL_HOSTED.fullmatch(uri) or _PATH_STYLE.fullmatch(uri)
    if match is None:
        return uri
    return f"s3://{match.group('bucket')}/{urllib.parse.unquote(match.group('key'))}"


def validate_s3(uri: Any, what: str) -> str:
    """Return an S3 location as ``s3://bucket/key`` (any form SageMaker accepts), or fail the task
    naming the parameter."""
    uri = normalize_s3_uri(uri)
    try:
        parse_s3_uri(uri)
    except StoreError as exc:
        raise task_failed(SAGEMAKER_ERROR, f"{what}: {exc}") from exc
    return str(uri)


# Environment variables that only batch transform sets; a server started for a transform with
# none of the others different serves an endpoint exactly the same way.
_BATCH_ONLY = ("SAGEMAKER_BATCH", "SAGEMAKER_BATCH_STRATEGY", "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS")


def server_key(
    code_dir: Path | ForeignImage, model_data_url: str | None, environment: Mapping[str, str]
) -> str:
    """Return the identity of a serving process: image code, model data and environment."""
    env = {k: v for k, v in environment.items() if k not in _BATCH_ONLY}
    return json.dumps([str(code_dir), model_data_url or "", sorted(env.items())])


class WarmServers:
    """Serving processes kept warm between a transform job and an endpoint of the same model.

    Starting ``serve`` costs seconds (torch import, model load); a local pipeline runs a batch
    transform and then deploys the same model, so the transform's process is parked here and
    adopted by the endpoint. A parked process not adopted within ``warm_seconds`` is stopped.
    """

    def __init__(self, settings: SageMakerSettings) -> None:
        self.settings = settings
        self._parked: dict[str, tuple[ServeProcess, threading.Timer]] = {}
        self._lock = threading.Lock()

    def park(self, key: str, server: ServeProcess) -> bool:
        """Keep ``server`` for reuse; return ``False`` (caller stops it) when reuse is off."""
        if not self.settings.reuse_servers or not server.alive():
            return False
        timer = threading.Timer(self.settings.warm_seconds, self._expire, args=(key, server.pid))
        timer.daemon = True
        with self._lock:
            previous = self._parked.pop(key, None)
            self._parked[key] = (server, timer)
        if previous is not None:
            previous[1].cancel()
            previous[0].stop(self.settings.stop_grace_seconds)
        timer.start()
        return True

    def adopt(self, key: str) -> ServeProcess | None:
        """Take a parked server with this identity, if one is alive."""
        with self._lock:
            entry = self._parked.pop(key, None)
        if entry is None:
            return None
        server, timer = entry
        timer.cancel()
        if not server.alive():
            return None
        logger.info("reusing the warm serving process %s at %s", server.pid, server.url)
        return server

    def stop_all(self) -> None:
        """Stop every parked server."""
        with self._lock:
            entries = list(self._parked.values())
            self._parked.clear()
        for server, timer in entries:
            timer.cancel()
            server.stop(self.settings.stop_grace_seconds)

    def _expire(self, key: str, pid: int) -> None:
        with self._lock:
            entry = self._parked.get(key)
            if entry is None or entry[0].pid != pid:
                return
            del self._parked[key]
        entry[0].stop(self.settings.stop_grace_seconds)
