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

The keys, their types and defaults are the fields of `workflow.config.models` (one pydantic model
per section); README 'Configuration' has the table. `local.*` never changes the ASL document:
local runs differ from AWS runs only in their execution input (hyperparameters, poll interval,
gate threshold). The quality gate compares the metric with the input's ``GateThreshold``:
``gate.threshold`` for AWS runs, ``local.gate_threshold`` for local runs (the demo model, trained
for under two minutes on a CPU, is judged against a lower bar).

Modules: `checks` (value types and their messages), `models` (the sections and defaults),
`loader` (`load_config`: sources, layering, one `ConfigError`).
"""

from __future__ import annotations

from workflow.config.loader import default_values, known_keys, load_config
from workflow.config.models import (
    DEFAULT_CONFIG_FILE,
    ENV_CONFIG,
    ENV_PREFIX,
    ApprovalConfig,
    ApproveMode,
    DataCaptureConfig,
    DatasetConfig,
    EndpointConfig,
    EvaluationConfig,
    GateConfig,
    GateMetric,
    LambdasConfig,
    LocalConfig,
    NotificationConfig,
    RolesConfig,
    S3Config,
    TrainingConfig,
    WorkflowConfig,
)

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "ENV_CONFIG",
    "ENV_PREFIX",
    "ApprovalConfig",
    "ApproveMode",
    "DataCaptureConfig",
    "DatasetConfig",
    "EndpointConfig",
    "EvaluationConfig",
    "GateConfig",
    "GateMetric",
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
