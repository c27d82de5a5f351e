"""The starting point of every notebook: mode, configuration and local store.

A notebook's ``parameters`` cell names the mode (``local`` or ``aws``), the configuration file,
the local store and configuration overrides; :func:`start` validates them and returns a frozen
:class:`Session`. Relative paths are resolved against the project folder (the nearest folder
holding ``workflow.yaml`` or ``pyproject.toml``), so a notebook opened from ``notebooks/`` in
Jupyter and one executed by ``python -m workflow notebooks`` from the repository root use the
same store and configuration.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workflow.config import DEFAULT_CONFIG_FILE, WorkflowConfig, load_config
from workflow.errors import WorkflowError

MODES = ("local", "aws")
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
PROJECT_MARKERS = (DEFAULT_CONFIG_FILE, "pyproject.toml")


class NotebookError(WorkflowError):
    """A notebook parameter or a notebook step cannot be used as given."""


@dataclass(frozen=True)
class Session:
    """What a notebook works with.

    Attributes:
        mode: ``local`` (local store, local engine, local endpoint) or ``aws``.
        config: The validated configuration.
        root: The local store folder (local mode; notebook run records in both modes).
        project: The project folder relative paths were resolved against.
        config_path: The configuration file read (``None``: environment and defaults only).
        overrides: The configuration overrides of the notebook.
    """

    mode: str
    config: WorkflowConfig
    root: Path
    project: Path
    config_path: Path | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        """Whether the session runs locally."""
        return self.mode == "local"

    def store(self) -> Any:
        """Return the :class:`~workflow.local.store.LocalStore` at :attr:`root`."""
        from workflow.local.store import LocalStore

        return LocalStore(self.root)

    @contextlib.contextmanager
    def aws_api(self) -> Iterator[AwsClients]:
        """Yield boto3 client factories: the local AWS API (local mode) or AWS (aws mode).

        In local mode this is ``python -m workflow api`` in-process, over this session's store:
        Step Functions on the local engine, the SageMaker reads of local resources and
        SageMaker Runtime's ``InvokeEndpoint`` for the local endpoints. The same boto3 code then
        runs against AWS in aws mode::

            with session.aws_api() as api:
                runtime = api.client("sagemaker-runtime")
                runtime.invoke_endpoint(EndpointName=name, ContentType="image/png", Body=png)
        """
        region = str(self.config.region)
        if not self.local:
            yield AwsClients(url="", region=region)
            return
        from workflow.api import ApiServer, LocalAwsApi
        from workflow.local.runtime import LocalRuntime

        runtime = LocalRuntime(self.config, self.root, log_sink=None, echo=False)
        try:
            runtime.install()
            with ApiServer(LocalAwsApi(runtime.engine, runtime.sagemaker)) as server:
                yield AwsClients(url=server.url, region=region)
        finally:
            runtime.close(keep_endpoints=True)

    def reconfigure(self, overrides: Mapping[str, Any]) -> Session:
        """Return a session whose configuration has ``overrides`` on top of the notebook's.

        Args:
            overrides: Dotted configuration keys, e.g. ``{"approval.enabled": False}``.

        Raises:
            ConfigError: When an override is invalid.
        """
        merged = {**self.overrides, **overrides}
        config = load_config(self.config_path, overrides=merged)
        return replace(self, config=config, overrides=merged)


@dataclass(frozen=True)
class AwsClients:
    """Makes boto3 clients for the local AWS API (``url``) or, with no ``url``, for AWS."""

    url: str
    region: str

    def client(self, service: str) -> Any:
        """Return a boto3 client of ``service`` (``sagemaker-runtime``, ``stepfunctions``, ...)."""
        import boto3

        if not self.url:
            return boto3.client(service, region_name=self.region)
        return boto3.client(
            service, region_name=self.region, endpoint_url=self.url, **LOCAL_CREDENTIALS
        )


def project_dir(start_dir: Path | None = None) -> Path:
    """Return the nearest folder (``start_dir`` or above) holding ``workflow.yaml``, else the
    nearest holding ``pyproject.toml``, else ``start_dir`` (default: the working directory)."""
    here = (start_dir or Path.cwd()).resolve()
    for marker in PROJECT_MARKERS:
        for folder in (here, *here.parents):
            if (folder / marker).is_file():
                return folder
    return here


def start(
    mode: str,
    *,
    config_file: str | os.PathLike[str] = "",
    root: str | os.PathLike[str] = "",
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Session:
    """Validate a notebook's parameters and load the configuration.

    Args:
        mode: ``"local"`` or ``"aws"``.
        config_file: The configuration file; empty: ``$MLOPS_CONFIG``, else ``workflow.yaml`` of
            the project folder when it exists, else the defaults.
        root: The local store; empty: ``local.root`` of the configuration.
        overrides: Configuration keys on top of everything, e.g. ``{"gate.threshold": 0.0}``.
        environ: The environment for ``MLOPS_*`` values (default ``os.environ``).

    Returns:
        The session.

    Raises:
        NotebookError: When ``mode`` is unknown or ``overrides`` is not a mapping.
        ConfigError: When the configuration is invalid.
    """
    if mode not in MODES:
        raise NotebookError(
            f"mode = {mode!r} is not supported; set mode to 'local' (runs everything on this "
            "machine) or 'aws' (uses the account of your AWS credentials)."
        )
    if overrides is not None and not isinstance(overrides, Mapping):
        raise NotebookError(
            f"overrides = {overrides!r} is not a mapping; pass configuration keys as a dict, "
            "e.g. {'gate.threshold': 0.0}."
        )
    environ = os.environ if environ is None else environ
    project = project_dir()
    path: Path | None = None
    if str(config_file):
        path = _resolve(project, config_file)
        if not path.is_file():
            raise NotebookError(
                f"config_file = {str(config_file)!r} does not exist (looked for {path}); pass "
                "an existing workflow.yaml or leave it empty for the defaults."
            )
    elif not environ.get("MLOPS_CONFIG") and (project / DEFAULT_CONFIG_FILE).is_file():
        path = project / DEFAULT_CONFIG_FILE
    config = load_config(path, environ=environ, overrides=dict(overrides or {}))
    store_root = _resolve(project, str(root) if str(root) else config.local.root)
    return Session(
        mode=mode,
        config=config,
        root=store_root,
        project=project,
        config_path=path,
        overrides=dict(overrides or {}),
    )


def setup_logging(level: int = logging.INFO) -> None:
    """Show the package's progress messages in the notebook; quieten the SDKs and servers.

    Notebooks are entry points, so they configure logging (once, in their first cell).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    package = logging.getLogger("workflow")
    package.handlers = [handler]
    package.setLevel(level)
    package.propagate = False
    for noisy in ("botocore", "boto3", "urllib3", "sagemaker", "stepfunctions", "moto", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _resolve(project: Path, value: str | os.PathLike[str]) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (project / path).resolve()
