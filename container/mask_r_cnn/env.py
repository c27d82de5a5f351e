"""The SageMaker training tree as one frozen snapshot (`SageMakerEnv`).

SageMaker lays out a training container under `/opt/ml`; every path here derives from
`SAGEMAKER_BASE_DIR` (default `/opt/ml`), as in the SageMaker training toolkit, so a plain
directory with the same layout runs the container unchanged:

```
$SAGEMAKER_BASE_DIR/
  input/config/hyperparameters.json   {"epochs": "2", ...}   all values are strings
  input/config/inputdataconfig.json   {"training": {"TrainingInputMode": "File", ...}, ...}
  input/config/resourceconfig.json    {"current_host": "algo-1", "hosts": ["algo-1", ...]}
  input/data/<channel>/               training, validation (optional), pretrained (optional)
  model/                              what `serve` loads (tarred to model.tar.gz by SageMaker)
  output/failure                      the failure reason, first line = FailureReason
  checkpoints/                        synced with CheckpointConfig.S3Uri (managed spot)
```

See https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserInputError

ENV_BASE_DIR = "SAGEMAKER_BASE_DIR"
DEFAULT_BASE_DIR = "/opt/ml"
ENV_JOB_NAME = "TRAINING_JOB_NAME"
ENV_SOURCE_COMMIT = "SOURCE_COMMIT"
ENV_MASTER_ADDR = "MASTER_ADDR"
ENV_MASTER_PORT = "MASTER_PORT"
ENV_PROCESSES_PER_HOST = "MASK_R_CNN_PROCESSES_PER_HOST"
DEFAULT_MASTER_PORT = 29500


def base_dir_from(environ: Mapping[str, str]) -> Path:
    """Return the SageMaker base directory named by `SAGEMAKER_BASE_DIR` (default `/opt/ml`)."""
    return Path(environ.get(ENV_BASE_DIR) or DEFAULT_BASE_DIR)


def _read_json(path: Path, default: Any) -> Any:
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserInputError(
            f"{path} is not valid JSON ({exc}); SageMaker writes this file, so check the "
            "tree you laid out by hand."
        ) from exc


@dataclass(frozen=True, kw_only=True)
class SageMakerEnv:
    """A frozen snapshot of the SageMaker training tree and the environment variables we read.

    Attributes:
        base_dir: the root, `$SAGEMAKER_BASE_DIR`.
        hyperparameters: `hyperparameters.json` as read (values are normally strings).
        input_data_config: `inputdataconfig.json` as read.
        current_host: this host's name from `resourceconfig.json` (`algo-1` without one).
        hosts: every host of the job, sorted.
        training_job_name: `TRAINING_JOB_NAME`, when set.
        source_commit: `SOURCE_COMMIT`, when set (recorded in the model metadata).
        master_addr: `MASTER_ADDR` override of the master host's address, when set.
        master_port: `MASTER_PORT`, default 29500.
        network_interface_name: the interface SageMaker names in `resourceconfig.json`.
        processes_per_host: `MASK_R_CNN_PROCESSES_PER_HOST`, when set (default: one per GPU).
    """

    base_dir: Path
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    input_data_config: Mapping[str, Any] = field(default_factory=dict)
    current_host: str = "algo-1"
    hosts: tuple[str, ...] = ("algo-1",)
    training_job_name: str | None = None
    source_commit: str | None = None
    master_addr: str | None = None
    master_port: int = DEFAULT_MASTER_PORT
    network_interface_name: str | None = None
    processes_per_host: int | None = None

    @property
    def config_dir(self) -> Path:
        """`input/config`."""
        return self.base_dir / "input" / "config"

    @property
    def data_dir(self) -> Path:
        """`input/data`, one folder per channel."""
        return self.base_dir / "input" / "data"

    @property
    def model_dir(self) -> Path:
        """`model/`, the artifacts `serve` loads."""
        return self.base_dir / "model"

    @property
    def output_dir(self) -> Path:
        """`output/`."""
        return self.base_dir / "output"

    @property
    def failure_file(self) -> Path:
        """`output/failure`: its first line becomes the job's FailureReason."""
        return self.output_dir / "failure"

    @property
    def checkpoint_dir(self) -> Path:
        """`checkpoints/` (CheckpointConfig.LocalPath's default)."""
        return self.base_dir / "checkpoints"

    def channel_dir(self, name: str) -> Path:
        """Return the folder of channel `name` (it may not exist)."""
        return self.data_dir / name

    def has_channel(self, name: str) -> bool:
        """Whether channel `name` exists as a folder."""
        return self.channel_dir(name).is_dir()

    @property
    def host_rank(self) -> int:
        """This host's index among the sorted hosts."""
        return self.hosts.index(self.current_host)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> SageMakerEnv:
        """Read the tree under `$SAGEMAKER_BASE_DIR` and the variables this container uses.

        Args:
            environ: the environment to read; `os.environ` when omitted.

        Returns:
            The snapshot.

        Raises:
            UserInputError: a config file is not valid JSON, or `resourceconfig.json` is
                inconsistent, or `MASTER_PORT` is not a port number.
        """
        environ = os.environ if environ is None else environ
        base = base_dir_from(environ)
        config_dir = base / "input" / "config"
        hyperparameters = _read_json(config_dir / "hyperparameters.json", {})
        if not isinstance(hyperparameters, dict):
            raise UserInputError(
                f"{config_dir / 'hyperparameters.json'} holds {type(hyperparameters).__name__}, "
                'not a JSON object of name/value strings; write it as {"epochs": "2", ...}.'
            )
        data_config = _read_json(config_dir / "inputdataconfig.json", {})
        resource = _read_json(config_dir / "resourceconfig.json", {})
        if not isinstance(resource, dict):
            resource = {}
        current = str(resource.get("current_host") or "algo-1")
        hosts = tuple(sorted(str(h) for h in (resource.get("hosts") or [current])))
        if current not in hosts:
            raise UserInputError(
                f"{config_dir / 'resourceconfig.json'}: current_host {current!r} is not one of "
                f"hosts {list(hosts)}; list every host of the job in 'hosts'."
            )
        port_text = environ.get(ENV_MASTER_PORT) or str(DEFAULT_MASTER_PORT)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UserInputError(
                f"{ENV_MASTER_PORT}={port_text!r} is not a TCP port; set it to a free port "
                "between 1 and 65535 or unset it."
            )
        per_host_text = environ.get(ENV_PROCESSES_PER_HOST, "").strip()
        if per_host_text and (not per_host_text.isdigit() or int(per_host_text) < 1):
            raise UserInputError(
                f"{ENV_PROCESSES_PER_HOST}={per_host_text!r} is not a whole number >= 1; set it "
                "to the number of training processes per host or unset it (one per GPU)."
            )
        return cls(
            base_dir=base,
            hyperparameters=dict(hyperparameters),
            input_data_config=dict(data_config) if isinstance(data_config, dict) else {},
            current_host=current,
            hosts=hosts,
            training_job_name=environ.get(ENV_JOB_NAME) or None,
            source_commit=environ.get(ENV_SOURCE_COMMIT) or None,
            master_addr=environ.get(ENV_MASTER_ADDR) or None,
            master_port=int(port_text),
            network_interface_name=resource.get("network_interface_name") or None,
            processes_per_host=int(per_host_text) if per_host_text else None,
        )
