"""The configuration of the kit: one typed, frozen `WorkflowConfig`, loaded and validated at once.

Precedence (later wins): built-in defaults < `workflow.yaml` < `MLOPS_*` environment < overrides
(CLI flags such as ``--set gate.threshold=0.4``). Every problem found is reported together in one
`ConfigError`, each naming the key, the bad value and the fix. Unknown keys are errors.

Environment variables: ``MLOPS_<KEY>`` for a top-level key and ``MLOPS_<SECTION>__<KEY>`` (double
underscore) for a nested one, upper-case, e.g. ``MLOPS_REGION=eu-west-1``,
``MLOPS_S3__BUCKET=my-bucket``, ``MLOPS_GATE__THRESHOLD=0.4``, ``MLOPS_APPROVAL__ENABLED=false``,
``MLOPS_TRAINING__HYPERPARAMETERS__EPOCHS=20`` (one hyperparameter; its name is lower-cased) or
``MLOPS_TRAINING__HYPERPARAMETERS='{epochs: "20", lr: "0.01"}'`` (the whole mapping, YAML).
``null`` or an empty value unsets an optional key. ``MLOPS_CONFIG`` names the file (default: the
first ``workflow.yaml`` in the current directory or its parents; without a file the defaults
apply, which is enough for everything local).

The keys (defaults in brackets; ``<name>`` etc. are the values of those keys)::

    name                 state machine name; prefix of derived resource names [mask-r-cnn-mlops]
    region               AWS region [us-east-1]
    account_id           12 digits, used only to derive default ARNs ["000000000000"]
    roles.state_machine  role of the state machine [arn:aws:iam::<account_id>:role/<name>-state_machine]
    roles.sagemaker      role of training, models and transform [...:role/<name>-sagemaker]
    s3.bucket            bucket of data, models, checkpoints [<name>-<account_id>-<region>]
    s3.prefix            key prefix inside the bucket, no leading/trailing '/' [mask-r-cnn]
    ecr_repository       ECR repository of the BYOC image [mask-r-cnn]
    codebuild_project    CodeBuild project that builds the image [<name>-build]
    lambdas.start_build, lambdas.request_approval, lambdas.evaluate
                         Lambda function names [<name>-start-build, -request-approval, -evaluate]
    training.instance_type [ml.g4dn.xlarge]   training.instance_count [1]
    training.volume_size_gb [50]              training.max_runtime_seconds [86400]
    training.spot [false]                     training.max_wait_seconds [172800] (spot only)
    training.hyperparameters      string -> string [epochs 10, backbone resnet50_fpn, ...]
    training.hyperparameters_ssm_parameter  SSM parameter (a JSON object of strings) merged over
                                  the hyperparameters at run time [null: not used]
    evaluation.enabled [true]     evaluation.instance_type [ml.m5.xlarge]
    gate.enabled [true]           gate.metric bbox_mAP|segm_mAP [segm_mAP]   gate.threshold [0.5]
    approval.enabled [true]       approval.email [null]   approval.link_ttl_seconds [86400]
    notification.enabled [true]   notification.topic_arn [arn:aws:sns:<region>:<account_id>:<name>-notifications]
    endpoint.name [mask-r-cnn]    endpoint.instance_type [ml.m5.xlarge]
    endpoint.initial_instance_count [1]   endpoint.poll_seconds [30]
    local.root [.mlops]  local.poll_seconds [1]  local.approve auto|manual [auto]
    local.gate_threshold  the quality gate's threshold in local runs, 0 to 1 [0.1]
    local.hyperparameters  merged over training.hyperparameters for local runs [resnet18_fpn
                         of 64 channels, anchors auto, adamw, cosine, 350 steps, max_seconds 240]
    local.dataset.{train,validation,test,size,seed} [200, 16, 32, 96, 0]

`local.*` never changes the ASL document: local runs differ from AWS runs only in their execution
input (hyperparameters, poll interval, gate threshold). The quality gate compares the metric with
the input's ``GateThreshold``: ``gate.threshold`` for AWS runs, ``local.gate_threshold`` for local
runs (whose seconds-trained demo model scores about 0).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from workflow.errors import ConfigError

ENV_PREFIX = "MLOPS_"
ENV_CONFIG = "MLOPS_CONFIG"
ENV_SEPARATOR = "__"
DEFAULT_CONFIG_FILE = "workflow.yaml"

GateMetric = Literal["bbox_mAP", "segm_mAP"]
ApproveMode = Literal["auto", "manual"]


# --------------------------------------------------------------------------------------------
# The typed configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RolesConfig:
    """IAM role ARNs."""

    state_machine: str
    sagemaker: str


@dataclass(frozen=True, kw_only=True)
class S3Config:
    """Where data, models, checkpoints and transform output live."""

    bucket: str
    prefix: str

    def uri(self, *parts: str) -> str:
        """Return ``s3://bucket/prefix/part/.../`` (a trailing slash: a folder)."""
        keys = [p.strip("/") for p in (self.prefix, *parts) if p and p.strip("/")]
        return f"s3://{self.bucket}/" + "".join(f"{k}/" for k in keys)


@dataclass(frozen=True, kw_only=True)
class LambdasConfig:
    """Lambda function names (or ARNs)."""

    start_build: str
    request_approval: str
    evaluate: str


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """The SageMaker training job."""

    instance_type: str
    instance_count: int
    volume_size_gb: int
    max_runtime_seconds: int
    spot: bool
    max_wait_seconds: int
    hyperparameters: Mapping[str, str]
    hyperparameters_ssm_parameter: str | None


@dataclass(frozen=True, kw_only=True)
class EvaluationConfig:
    """The batch transform of the held-out images and the metrics Lambda."""

    enabled: bool
    instance_type: str


@dataclass(frozen=True, kw_only=True)
class GateConfig:
    """The quality gate: ``metric >= threshold`` or the execution fails."""

    enabled: bool
    metric: GateMetric
    threshold: float


@dataclass(frozen=True, kw_only=True)
class ApprovalConfig:
    """The manual approval (a task token sent by e-mail)."""

    enabled: bool
    email: str | None
    link_ttl_seconds: int


@dataclass(frozen=True, kw_only=True)
class NotificationConfig:
    """The SNS notifications on success and failure."""

    enabled: bool
    topic_arn: str


@dataclass(frozen=True, kw_only=True)
class EndpointConfig:
    """The real-time endpoint, created once and then updated in place."""

    name: str
    instance_type: str
    initial_instance_count: int
    poll_seconds: int


@dataclass(frozen=True, kw_only=True)
class DatasetConfig:
    """Size of the synthetic data set of local runs."""

    train: int
    validation: int
    test: int
    size: int
    seed: int


@dataclass(frozen=True, kw_only=True)
class LocalConfig:
    """Settings of the local runtime; they never change the ASL document."""

    root: str
    poll_seconds: int
    approve: ApproveMode
    gate_threshold: float
    hyperparameters: Mapping[str, str]
    dataset: DatasetConfig


@dataclass(frozen=True, kw_only=True)
class WorkflowConfig:
    """The whole configuration, validated. Build it with `load_config`."""

    name: str
    region: str
    account_id: str
    roles: RolesConfig
    s3: S3Config
    ecr_repository: str
    codebuild_project: str
    lambdas: LambdasConfig
    training: TrainingConfig
    evaluation: EvaluationConfig
    gate: GateConfig
    approval: ApprovalConfig
    notification: NotificationConfig
    endpoint: EndpointConfig
    local: LocalConfig
    source: str = field(default="defaults", compare=False)

    @property
    def image_repository_uri(self) -> str:
        """The ECR repository URI of the BYOC image (without tag)."""
        return f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com/{self.ecr_repository}"

    @property
    def state_machine_arn(self) -> str:
        """The ARN the state machine has once deployed."""
        return f"arn:aws:states:{self.region}:{self.account_id}:stateMachine:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as plain data (the shape of `workflow.yaml`)."""
        data: dict[str, Any] = _plain(self)
        data.pop("source")
        return data


def _plain(value: Any) -> Any:
    """Dataclasses and read-only mappings -> plain dicts (for YAML/JSON)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------------------------
# The schema: type, default and check of every key
# --------------------------------------------------------------------------------------------

Check = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class _Spec:
    kind: Literal["str", "int", "float", "bool", "map"]
    default: Any
    check: Check | None = None
    optional: bool = False


def _pattern(regex: str, expectation: str) -> Check:
    compiled = re.compile(regex)

    def check(value: Any) -> str | None:
        return None if compiled.fullmatch(value) else expectation

    return check


def _range(low: float, high: float, unit: str = "") -> Check:
    def check(value: Any) -> str | None:
        if low <= value <= high:
            return None
        return f"is out of range (expected {low:g} to {high:g}{unit})"

    return check


def _choice(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in choices else f"is not one of {', '.join(choices)}"

    return check


_NAME = _pattern(
    r"[A-Za-z][A-Za-z0-9-]{0,62}",
    "is not a valid name (expected 1-63 characters of letters, digits and '-', starting with a "
    "letter, e.g. 'mask-r-cnn-mlops')",
)
_REGION = _pattern(
    r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d", "is not an AWS region (e.g. 'us-east-1')"
)
_ACCOUNT = _pattern(r"\d{12}", "is not an AWS account ID (expected 12 digits in quotes)")
_ROLE = _pattern(
    r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}",
    "is not an IAM role ARN (expected 'arn:aws:iam::123456789012:role/NAME')",
)
_BUCKET = _pattern(
    r"(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
    "is not a valid S3 bucket name (expected 3-63 lower-case letters, digits, '.' and '-'); "
    "set s3.bucket",
)
_PREFIX = _pattern(
    r"([A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*)?",
    "is not a valid key prefix (expected segments of letters, digits and !_.*'()- separated by "
    "'/', with no leading or trailing '/')",
)
_ECR = _pattern(
    r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*",
    "is not a valid ECR repository name (expected lower-case letters, digits and ._-/, "
    "e.g. 'mask-r-cnn')",
)
_CODEBUILD = _pattern(
    r"[A-Za-z0-9][A-Za-z0-9_-]{1,254}",
    "is not a valid CodeBuild project name (expected 2-255 letters, digits, '-' and '_')",
)
_LAMBDA = _pattern(
    r"[A-Za-z0-9_-]{1,64}|arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}"
    r"(:[A-Za-z0-9_$-]+)?",
    "is not a Lambda function name or ARN (expected up to 64 letters, digits, '-' and '_')",
)
_INSTANCE = _pattern(
    r"ml\.[a-z0-9-]+\.[a-z0-9]+",
    "is not a SageMaker instance type (expected 'ml.*', e.g. 'ml.m5.xlarge')",
)
_SSM = _pattern(
    r"/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*",
    "is not an SSM parameter name (expected e.g. '/mask-r-cnn/hyperparameters')",
)
_EMAIL = _pattern(r"[^@\s]+@[^@\s]+\.[^@\s]+", "is not an e-mail address")
_TOPIC = _pattern(
    r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}",
    "is not an SNS topic ARN (expected 'arn:aws:sns:REGION:ACCOUNT:NAME')",
)
_ENDPOINT = _pattern(
    r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
    "is not a valid SageMaker endpoint name (expected 1-63 letters, digits and '-', not starting "
    "or ending with '-')",
)

# The keys of `workflow.yaml`, in the order of docs/architecture.md.
SCHEMA: dict[str, Any] = {
    "name": _Spec("str", "mask-r-cnn-mlops", _NAME),
    "region": _Spec("str", "us-east-1", _REGION),
    "account_id": _Spec("str", "000000000000", _ACCOUNT),
    "roles": {
        "state_machine": _Spec("str", None, _ROLE, optional=True),
        "sagemaker": _Spec("str", None, _ROLE, optional=True),
    },
    "s3": {
        "bucket": _Spec("str", None, _BUCKET, optional=True),
        "prefix": _Spec("str", "mask-r-cnn", _PREFIX),
    },
    "ecr_repository": _Spec("str", "mask-r-cnn", _ECR),
    "codebuild_project": _Spec("str", None, _CODEBUILD, optional=True),
    "lambdas": {
        "start_build": _Spec("str", None, _LAMBDA, optional=True),
        "request_approval": _Spec("str", None, _LAMBDA, optional=True),
        "evaluate": _Spec("str", None, _LAMBDA, optional=True),
    },
    "training": {
        "instance_type": _Spec("str", "ml.g4dn.xlarge", _INSTANCE),
        "instance_count": _Spec("int", 1, _range(1, 100)),
        "volume_size_gb": _Spec("int", 50, _range(1, 16384, " GB")),
        "max_runtime_seconds": _Spec("int", 86400, _range(1, 2419200, " seconds")),
        "spot": _Spec("bool", False),
        "max_wait_seconds": _Spec("int", 172800, _range(1, 2419200, " seconds")),
        "hyperparameters": _Spec(
            "map", {"epochs": "10", "backbone": "resnet50_fpn", "batch_size": "4", "lr": "0.005"}
        ),
        "hyperparameters_ssm_parameter": _Spec("str", None, _SSM, optional=True),
    },
    "evaluation": {
        "enabled": _Spec("bool", True),
        "instance_type": _Spec("str", "ml.m5.xlarge", _INSTANCE),
    },
    "gate": {
        "enabled": _Spec("bool", True),
        "metric": _Spec("str", "segm_mAP", _choice("bbox_mAP", "segm_mAP")),
        "threshold": _Spec("float", 0.5, _range(0.0, 1.0)),
    },
    "approval": {
        "enabled": _Spec("bool", True),
        "email": _Spec("str", None, _EMAIL, optional=True),
        "link_ttl_seconds": _Spec("int", 86400, _range(60, 604800, " seconds")),
    },
    "notification": {
        "enabled": _Spec("bool", True),
        "topic_arn": _Spec("str", None, _TOPIC, optional=True),
    },
    "endpoint": {
        "name": _Spec("str", "mask-r-cnn", _ENDPOINT),
        "instance_type": _Spec("str", "ml.m5.xlarge", _INSTANCE),
        "initial_instance_count": _Spec("int", 1, _range(1, 100)),
        "poll_seconds": _Spec("int", 30, _range(1, 3600, " seconds")),
    },
    "local": {
        "root": _Spec("str", ".mlops"),
        "poll_seconds": _Spec("int", 1, _range(0, 3600, " seconds")),
        "approve": _Spec("str", "auto", _choice("auto", "manual")),
        "gate_threshold": _Spec("float", 0.1, _range(0.0, 1.0)),
        "hyperparameters": _Spec(
            "map",
            # The demo: under two minutes of real training on 2 CPU cores. A CPU-fit
            # Mask R-CNN (ResNet-18 FPN of 64 channels, narrow heads, anchors derived from the
            # boxes) with AdamW and a cosine decay to max_steps; max_seconds caps it on much
            # slower machines. The model's resize matches local.dataset.size.
            {
                "epochs": "100",
                "max_steps": "350",
                "max_seconds": "240",
                "backbone": "resnet18_fpn",
                "fpn_channels": "64",
                "box_head_channels": "256",
                "mask_head_channels": "64",
                "mask_head_layers": "2",
                "anchor_sizes": "auto",
                "optimizer": "adamw",
                "lr": "0.001",
                "lr_schedule": "cosine",
                "warmup_steps": "20",
                "batch_size": "4",
                "min_size": "96",
                "max_size": "96",
                "fast": "true",
                "detections_per_image": "20",
                "score_threshold": "0.3",
                "num_workers": "0",
            },
        ),
        "dataset": {
            "train": _Spec("int", 200, _range(1, 100000)),
            "validation": _Spec("int", 16, _range(1, 100000)),
            "test": _Spec("int", 32, _range(1, 100000)),
            "size": _Spec("int", 96, _range(32, 4096, " pixels")),
            "seed": _Spec("int", 0, _range(0, 2**32 - 1)),
        },
    },
}


def default_values() -> dict[str, Any]:
    """Return the built-in defaults as a nested dict (derived values left as None)."""

    def walk(node: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, spec in node.items():
            if isinstance(spec, _Spec):
                out[key] = dict(spec.default) if spec.kind == "map" else spec.default
            else:
                out[key] = walk(spec)
        return out

    return walk(SCHEMA)


def known_keys() -> list[str]:
    """Return every dotted key of the schema, e.g. ``gate.threshold``."""
    keys: list[str] = []

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, spec in node.items():
            if isinstance(spec, _Spec):
                keys.append(prefix + key)
            else:
                walk(spec, f"{prefix}{key}.")

    walk(SCHEMA, "")
    return keys


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


class _Collector:
    """Collects problems and remembers where each value came from."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.origins: dict[str, str] = {}

    def add(self, key: str, value: Any, expectation: str) -> None:
        origin = self.origins.get(key, "")
        note = f" (from {origin})" if origin else ""
        self.problems.append(f"{key} = {value!r}{note} {expectation}")


def load_config(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] = os.environ,
    overrides: Mapping[str, Any] | None = None,
) -> WorkflowConfig:
    """Load, merge and validate the configuration.

    Args:
        path: The YAML file. None: ``$MLOPS_CONFIG``, else the first ``workflow.yaml`` in the
            current directory or its parents, else the defaults alone.
        environ: The environment to read ``MLOPS_*`` overrides from.
        overrides: Values on top of everything (CLI flags), as dotted keys
            (``{"gate.threshold": 0.4}``) or nested mappings (``{"gate": {"threshold": 0.4}}``).
            Strings are parsed like environment values.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: With every problem found, each naming the key, the value and the fix.
    """
    problems = _Collector()
    file_path = _resolve_path(path, environ)
    source = str(file_path) if file_path is not None else "defaults"
    raw = default_values()

    if file_path is not None:
        file_data = _read_yaml(file_path)
        _merge_file(raw, file_data, SCHEMA, "", problems, file_path.name)

    _merge_environ(raw, environ, problems)
    if overrides:
        _merge_overrides(raw, overrides, problems)

    config = _build(raw, problems)
    if problems.problems or config is None:
        raise ConfigError(problems.problems, source=source)
    return WorkflowConfig(**{**config, "source": source})


def _resolve_path(path: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path | None:
    if path is not None:
        return Path(path)
    if environ.get(ENV_CONFIG):
        return Path(environ[ENV_CONFIG])
    # The current directory, then its parents (a notebook runs in notebooks/).
    here = Path.cwd()
    for folder in (here, *here.parents):
        candidate = folder / DEFAULT_CONFIG_FILE
        if candidate.is_file():
            return candidate if folder != here else Path(DEFAULT_CONFIG_FILE)
    return None


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            ["the file does not exist; create it (see README 'Configuration') or pass --config"],
            source=str(path),
        ) from None
    except OSError as exc:
        raise ConfigError([f"cannot be read ({exc.strerror})"], source=str(path)) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            [f"is not valid YAML{where}: {getattr(exc, 'problem', exc)}; fix the syntax"],
            source=str(path),
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            [
                f"holds a {type(data).__name__}, expected a mapping of keys (e.g. 'region: us-east-1')"
            ],
            source=str(path),
        )
    return data


def _merge_file(
    raw: dict[str, Any],
    data: Mapping[Any, Any],
    schema: Mapping[str, Any],
    prefix: str,
    problems: _Collector,
    origin: str,
) -> None:
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        spec = schema.get(key) if isinstance(key, str) else None
        if spec is None:
            close = [k for k in schema if isinstance(key, str) and _similar(key, k)]
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            problems.problems.append(
                f"{dotted} is not a configuration key (known at this level: "
                f"{', '.join(prefix + k for k in schema)}){hint}; remove or rename it"
            )
            continue
        if isinstance(spec, _Spec):
            raw[key] = value
            problems.origins.pop(dotted, None)
        elif isinstance(value, Mapping):
            _merge_file(raw[key], value, spec, dotted + ".", problems, origin)
        else:
            problems.problems.append(
                f"{dotted} = {value!r} must be a mapping with the keys "
                f"{', '.join(spec)}; indent them under '{key}:'"
            )


def _similar(a: str, b: str) -> bool:
    import difflib

    return difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio() >= 0.75


def _lookup(parts: list[str]) -> tuple[_Spec | None, list[str], list[str]]:
    """Find the spec for a key path; return (spec, path to the spec, rest inside a map)."""
    node: Any = SCHEMA
    walked: list[str] = []
    for i, part in enumerate(parts):
        if not isinstance(node, Mapping) or part not in node:
            return None, walked, parts[i:]
        node = node[part]
        walked.append(part)
        if isinstance(node, _Spec):
            return node, walked, parts[i + 1 :]
    return None, walked, []


def _set_value(
    raw: dict[str, Any],
    parts: list[str],
    value: Any,
    problems: _Collector,
    origin: str,
) -> None:
    spec, walked, rest = _lookup(parts)
    dotted = ".".join(parts)
    if spec is None or (rest and spec.kind != "map"):
        import difflib

        close = difflib.get_close_matches(dotted, known_keys(), n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'? " if close else ""
        problems.problems.append(
            f"{origin} does not name a configuration key ('{dotted}' is unknown); {hint}"
            "the keys are listed in workflow/config.py and README 'Configuration'"
        )
        return
    target = raw
    for part in walked[:-1]:
        target = target[part]
    key = ".".join(walked)
    if rest:  # one entry of a map, e.g. training.hyperparameters.epochs
        current = target[walked[-1]]
        if not isinstance(current, dict):
            current = {}
        target[walked[-1]] = {**current, ".".join(rest): value}
    else:
        target[walked[-1]] = _parse_text(spec, value) if isinstance(value, str) else value
    problems.origins[key] = origin


def _parse_text(spec: _Spec, text: str) -> Any:
    """Turn an environment / CLI string into the YAML value it spells, per the key's kind."""
    stripped = text.strip()
    if spec.optional and stripped.lower() in ("", "null", "none", "~"):
        return None
    if spec.kind == "str":
        return text
    if spec.kind == "bool":
        lowered = stripped.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        return text
    if spec.kind in ("int", "float", "map"):
        import yaml

        try:
            return yaml.safe_load(stripped)
        except yaml.YAMLError:
            return text
    return text


def _merge_environ(raw: dict[str, Any], environ: Mapping[str, str], problems: _Collector) -> None:
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG:
            continue
        parts = name[len(ENV_PREFIX) :].lower().split(ENV_SEPARATOR)
        if not all(parts):
            problems.problems.append(
                f"environment variable {name} is malformed; use MLOPS_<SECTION>__<KEY>, "
                "e.g. MLOPS_S3__BUCKET"
            )
            continue
        _set_value(raw, parts, environ[name], problems, name)


def _merge_overrides(
    raw: dict[str, Any], overrides: Mapping[str, Any], problems: _Collector
) -> None:
    def flatten(data: Mapping[str, Any], prefix: str) -> list[tuple[str, Any]]:
        items: list[tuple[str, Any]] = []
        for key, value in data.items():
            dotted = f"{prefix}{key}"
            spec, _, _ = _lookup(dotted.split("."))
            if isinstance(value, Mapping) and spec is None:
                items.extend(flatten(value, dotted + "."))
            else:
                items.append((dotted, value))
        return items

    for dotted, value in flatten(overrides, ""):
        _set_value(raw, dotted.split("."), value, problems, f"--set {dotted}")


# --------------------------------------------------------------------------------------------
# Validation and derived defaults
# --------------------------------------------------------------------------------------------


def _coerce(spec: _Spec, key: str, value: Any, problems: _Collector) -> Any:
    """Return the typed value, or None after recording a problem."""
    if value is None:
        if spec.optional:
            return None
        problems.add(key, value, "must be set (it has no derived default); give it a value")
        return None
    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        problems.add(key, value, "is not a boolean (expected true or false)")
    elif spec.kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        problems.add(key, value, "is not an integer (e.g. 1)")
    elif spec.kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        problems.add(key, value, "is not a number (e.g. 0.5)")
    elif spec.kind == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and key == "account_id":
            return str(value)  # unquoted digits; leading zeros are lost, so the check below tells
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        problems.add(key, value, "is not a string; quote it")
    elif spec.kind == "map":
        return _coerce_map(key, value, problems)
    return None


def _coerce_map(key: str, value: Any, problems: _Collector) -> dict[str, str] | None:
    if not isinstance(value, Mapping):
        problems.add(key, value, "is not a mapping of names to values (e.g. {epochs: '10'})")
        return None
    out: dict[str, str] = {}
    ok = True
    for name, item in value.items():
        entry = f"{key}.{name}"
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.:/-]{1,256}", name):
            problems.add(
                key, name, "has an invalid hyperparameter name (expected 1-256 of A-Za-z0-9_.:/-)"
            )
            ok = False
        elif isinstance(item, str):
            out[name] = item
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            out[name] = str(item)  # SageMaker passes hyperparameters as strings
        else:
            problems.add(
                entry, item, "is not a string or number (SageMaker passes strings); quote it"
            )
            ok = False
    if len(out) > 100:
        problems.add(key, f"<{len(out)} entries>", "has more than 100 entries (SageMaker's limit)")
        ok = False
    for name, item in out.items():
        if len(item) > 2500:
            problems.add(f"{key}.{name}", item[:20] + "...", "is longer than 2500 characters")
            ok = False
    return out if ok else None


def _typed_tree(
    raw: Mapping[str, Any], schema: Mapping[str, Any], prefix: str, problems: _Collector
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, spec in schema.items():
        dotted = prefix + key
        if isinstance(spec, _Spec):
            value = _coerce(spec, dotted, raw.get(key), problems)
            if value is not None and spec.check is not None:
                expectation = spec.check(value)
                if expectation:
                    problems.add(dotted, value, expectation)
                    value = None
            out[key] = value
        else:
            out[key] = _typed_tree(raw.get(key) or {}, spec, dotted + ".", problems)
    return out


def _derive(values: dict[str, Any], problems: _Collector) -> None:
    """Fill the derived defaults, then check them like user-given values."""
    name, region, account = values["name"], values["region"], values["account_id"]
    if None in (name, region, account):
        return  # already reported; derived names would only repeat the problem
    derived: list[tuple[str, dict[str, Any], str, str, Check]] = [
        (
            "roles.state_machine",
            values["roles"],
            "state_machine",
            f"arn:aws:iam::{account}:role/{name}-state_machine",
            _ROLE,
        ),
        (
            "roles.sagemaker",
            values["roles"],
            "sagemaker",
            f"arn:aws:iam::{account}:role/{name}-sagemaker",
            _ROLE,
        ),
        ("s3.bucket", values["s3"], "bucket", f"{name}-{account}-{region}", _BUCKET),
        ("codebuild_project", values, "codebuild_project", f"{name}-build", _CODEBUILD),
        ("lambdas.start_build", values["lambdas"], "start_build", f"{name}-start-build", _LAMBDA),
        (
            "lambdas.request_approval",
            values["lambdas"],
            "request_approval",
            f"{name}-request-approval",
            _LAMBDA,
        ),
        ("lambdas.evaluate", values["lambdas"], "evaluate", f"{name}-evaluate", _LAMBDA),
        (
            "notification.topic_arn",
            values["notification"],
            "topic_arn",
            f"arn:aws:sns:{region}:{account}:{name}-notifications",
            _TOPIC,
        ),
    ]
    for key, section, field_name, default, check in derived:
        if section.get(field_name) is not None:
            continue
        if any(p.startswith(f"{key} = ") for p in problems.problems):
            continue  # the given value was bad and is already reported
        expectation = check(default)
        if expectation:
            problems.add(
                key, default, f"(derived from name/account_id/region) {expectation}; set {key}"
            )
            continue
        section[field_name] = default


def _cross_checks(values: dict[str, Any], problems: _Collector) -> None:
    training, gate, evaluation = values["training"], values["gate"], values["evaluation"]
    if (
        training["spot"]
        and training["max_wait_seconds"] is not None
        and training["max_runtime_seconds"] is not None
        and training["max_wait_seconds"] < training["max_runtime_seconds"]
    ):
        problems.add(
            "training.max_wait_seconds",
            training["max_wait_seconds"],
            f"is less than training.max_runtime_seconds ({training['max_runtime_seconds']}); "
            "managed spot needs max_wait_seconds >= max_runtime_seconds",
        )
    if gate["enabled"] and evaluation["enabled"] is False:
        problems.add(
            "gate.enabled",
            True,
            "needs evaluation.enabled = true (the gate reads the evaluation's metrics); set "
            "gate.enabled: false or evaluation.enabled: true",
        )


def _build(raw: dict[str, Any], problems: _Collector) -> dict[str, Any] | None:
    values = _typed_tree(raw, SCHEMA, "", problems)
    _derive(values, problems)
    _cross_checks(values, problems)
    if problems.problems:
        return None
    local = dict(values["local"])
    local["dataset"] = DatasetConfig(**local["dataset"])
    # Read-only views: a frozen config must not change through its mappings either.
    local["hyperparameters"] = MappingProxyType(dict(local["hyperparameters"]))
    training = dict(values["training"])
    training["hyperparameters"] = MappingProxyType(dict(training["hyperparameters"]))
    return {
        "name": values["name"],
        "region": values["region"],
        "account_id": values["account_id"],
        "roles": RolesConfig(**values["roles"]),
        "s3": S3Config(**values["s3"]),
        "ecr_repository": values["ecr_repository"],
        "codebuild_project": values["codebuild_project"],
        "lambdas": LambdasConfig(**values["lambdas"]),
        "training": TrainingConfig(**training),
        "evaluation": EvaluationConfig(**values["evaluation"]),
        "gate": GateConfig(**values["gate"]),
        "approval": ApprovalConfig(**values["approval"]),
        "notification": NotificationConfig(**values["notification"]),
        "endpoint": EndpointConfig(**values["endpoint"]),
        "local": LocalConfig(**local),
    }


__all__ = [
    "DEFAULT_CONFIG_FILE",
    "ENV_CONFIG",
    "ENV_PREFIX",
    "SCHEMA",
    "ApprovalConfig",
    "DatasetConfig",
    "EndpointConfig",
    "EvaluationConfig",
    "GateConfig",
    "LambdasConfig",
    "LocalConfig",
    "NotificationConfig",
    "RolesConfig",
    "S3Config",
    "TrainingConfig",
    "WorkflowConfig",
    "default_values",
    "known_keys",
    "load_config",
]
