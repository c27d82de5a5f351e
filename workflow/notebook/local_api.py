"""The local runtime behind a Step Functions API, for the SDK in a notebook.

:class:`LocalStepFunctions` serves the local runtime as a Step Functions API on 127.0.0.1 with a
boto3 client for it, so ``Workflow.create()``, ``execute()``, ``get_output()`` and
``list_events()`` run the real ASL on this machine.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from types import TracebackType
from typing import Any, TextIO

from workflow.notebook.session import NotebookError, Session

# Credentials that the local endpoint accepts; real ones must never be sent to it.
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


class LocalStepFunctions:
    """The local runtime served as a Step Functions API, with a client for the SDK.

    Use it as a context manager around the cell that runs the workflow::

        with nb.LocalStepFunctions(session) as local:
            workflow = build_workflow(session.config, client=local.client)
            workflow.create()
            execution = workflow.execute(name=..., inputs=local.execution_input())
            output = execution.get_output(wait=True)

    Leaving the block stops the API server, the jobs and (unless ``keep_endpoint``) the local
    endpoint; a kept endpoint is listed by ``python -m workflow endpoints list``.

    Args:
        session: A ``local`` session.
        approve: ``auto`` (approve when the gate metric passes) or ``manual``.
        keep_endpoint: Leave the endpoint running for notebook 03.
        stream: Where progress lines go (default: the cell's stdout).
        verbose: Print every training log line, not only the progress lines.
        **runtime_options: Passed to :class:`~workflow.local.runtime.LocalRuntime`.
    """

    def __init__(
        self,
        session: Session,
        *,
        approve: str | None = None,
        keep_endpoint: bool = True,
        stream: TextIO | None = None,
        verbose: bool = False,
        **runtime_options: Any,
    ) -> None:
        if not session.local:
            raise NotebookError(
                f"LocalStepFunctions needs mode 'local', not {session.mode!r}; in aws mode "
                "deploy with nb.deploy(workflow) instead."
            )
        self.session = session
        self.approve = approve
        self.keep_endpoint = keep_endpoint
        self.stream = stream
        self.verbose = verbose
        self.runtime_options = runtime_options
        self.runtime: Any = None
        self.client: Any = None
        self.url = ""
        self._stop_server: Any = None
        self._unsubscribe: Any = None

    def __enter__(self) -> LocalStepFunctions:
        import boto3

        from workflow.api import ApiServer, LocalAwsApi
        from workflow.local.report import Progress
        from workflow.local.runtime import LocalRuntime

        progress = Progress(stream=self.stream or sys.stdout, verbose=self.verbose)
        self.runtime = LocalRuntime(
            self.session.config,
            self.session.root,
            approve=self.approve,
            log_sink=progress.log_sink,
            **self.runtime_options,
        )
        try:
            self.runtime.install()
            self._unsubscribe = self.runtime.engine.on_event(progress)
            server = ApiServer(LocalAwsApi(self.runtime.engine, self.runtime.sagemaker)).start()
            self.url, self._stop_server = server.url, server.stop
            self.client = boto3.client(
                "stepfunctions",
                endpoint_url=self.url,
                region_name=self.session.config.region,
                **LOCAL_CREDENTIALS,
            )
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the API server (aborting running executions), the jobs and the endpoint."""
        if self._stop_server is not None:
            self._stop_server()
            self._stop_server = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.runtime is not None:
            self.runtime.close(keep_endpoints=self.keep_endpoint)

    @property
    def store(self) -> Any:
        """The local store."""
        return self.runtime.store

    def execution_input(
        self, commit: str = "", image_uri: str = "", environ: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Return the execution input of a local run on the synthetic data set of the store.

        Like ``run --local``: the local hyperparameters, poll interval and gate threshold
        (``GateThreshold = local.gate_threshold``) over the configuration's defaults.

        Args:
            commit: The commit to build (default: the working tree's ``git rev-parse HEAD``).
            image_uri: An image to use instead of building one.
            environ: The environment of the commit lookup (default ``os.environ``).
        """
        from workflow.local.pipeline import build_input, ensure_dataset, local_commit

        data = ensure_dataset(self.runtime.store, self.session.config)
        commit = commit or local_commit(os.environ if environ is None else environ)
        return build_input(self.session.config, commit, data, image_uri or None)

    def endpoint_url(self, name: str = "") -> str | None:
        """Return the URL of a running local endpoint (default: the configured one)."""
        url: str | None = self.runtime.endpoint_url(name or self.session.config.endpoint.name)
        return url
