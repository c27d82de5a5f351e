"""The local runtime: one engine with every local handler, Lambda and client wired in.

:class:`LocalRuntime` is what ``run --local``, ``exec`` and the notebook server build::

    runtime = LocalRuntime(config)            # store at config.local.root
    with runtime:                             # installs the local Lambda clients
        execution = runtime.engine.start_execution(definition, execution_input, name=...)
        execution.wait()
    # leaving the block stops the jobs and the endpoints this runtime started

What is registered on the engine:

=====================================  =======================================================
``sagemaker:createTrainingJob(.sync)``  the image's ``train`` as local processes
``sagemaker:createModel``               a record
``sagemaker:createEndpointConfig``      a record
``sagemaker:createEndpoint``            the image's ``serve`` on 127.0.0.1 (``updateEndpoint``,
                                        ``deleteEndpoint``, ``aws-sdk:sagemaker:describeEndpoint``)
``sagemaker:createTransformJob(.sync)`` a batch transform through a ``serve`` process
``aws-sdk:sagemaker:createModelPackage`` the model registry (:mod:`workflow.local.model_registry`:
                                        ``createModelPackageGroup``, ``describeModelPackage``,
                                        ``listModelPackages``, ``updateModelPackage``, ...)
``sns:publish``                         the outbox (``<root>/outbox.jsonl``)
``aws-sdk:ssm:getParameter``            local parameters (``<root>/ssm/<name>``, read at call)
``aws-sdk:codebuild:batchGetBuilds``    the local builds (:mod:`workflow.local.build`)
Lambda functions of the config          ``workflow.lambdas`` handlers, in-process
=====================================  =======================================================

The approval Lambda runs as on AWS (its email lands in the outbox) and then, locally, either
answers its own token (``approve="auto"``: approved when the gate metric of the event passes the
threshold) or waits for ``python -m workflow approve|reject TOKEN`` (``approve="manual"``,
through :mod:`workflow.local.callbacks`).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from workflow.checkout import checkout_root
from workflow.config import WorkflowConfig
from workflow.contracts import ERROR_REJECTED, GATE_THRESHOLD_KEY
from workflow.errors import ConfigError
from workflow.infra_options import rollback_alarms
from workflow.local.build import LocalBuilder, LocalImages
from workflow.local.callbacks import CallbackWatcher
from workflow.local.clients import LocalClients, LocalS3, LocalSsm
from workflow.local.cloudwatch import LocalCloudWatch
from workflow.local.model_registry import ModelRegistry
from workflow.local.processes import LogSink
from workflow.local.sagemaker import LocalSageMaker, SageMakerSettings, stderr_sink
from workflow.local.sagemaker_endpoints import (
    EndpointConfigHandler,
    EndpointHandlers,
    ModelHandler,
    endpoint_records,
    stop_endpoint,
)
from workflow.local.sagemaker_training import TrainingJobHandler
from workflow.local.sagemaker_transform import TransformJobHandler
from workflow.local.sns import Outbox, SnsPublishHandler
from workflow.local.store import LocalStore, ObjectExistsError, write_new
from workflow.retry import retry_until_deadline

logger = logging.getLogger(__name__)

APPROVE_MODES = ("auto", "manual")
APPROVAL_SECRET_ID = "local/approval-signing-key"
LOCAL_APPROVAL_URL = "http://127.0.0.1/local-approval"
REPO_ROOT = checkout_root()


def default_container_dir() -> Path:
    """The repository's ``container/`` folder (what local builds snapshot)."""
    return REPO_ROOT / "container"


def store_root(config: WorkflowConfig, root: Path | str | None = None) -> Path:
    """Return the local store root: ``root``, else ``local.root`` (relative to the cwd)."""
    return Path(root if root is not None else config.local.root)


class LocalRuntime:
    """An engine plus the local services, Lambdas and clients of one configuration.

    Args:
        config: The workflow configuration.
        root: The store root (default ``config.local.root``).
        approve: ``"auto"`` or ``"manual"`` (default ``config.local.approve``).
        container_dir: The ``container/`` folder local builds snapshot.
        log_sink: Receives ``(source, line)`` of training logs (default: stderr, prefixed).
        time_scale: Engine sleep scale (tests use a small value); timeouts stay real.
        poll_interval: Seconds between ``.sync`` polls.
        use_docker: Force the Docker build on/off; ``None`` probes ``docker info``.
        stop_grace_seconds: SIGTERM-to-SIGKILL grace for jobs and servers.
        reuse_servers: Let an endpoint adopt the warm serving process of a transform job of the
            same model (saves a process start).
        echo: Print SNS messages and approval instructions.
        say: Prints one such line (default: stderr).
    """

    def __init__(
        self,
        config: WorkflowConfig,
        root: Path | str | None = None,
        *,
        approve: str | None = None,
        container_dir: Path | None = None,
        log_sink: LogSink | None = stderr_sink,
        time_scale: float = 1.0,
        poll_interval: float = 0.5,
        use_docker: bool | None = None,
        stop_grace_seconds: float = 10.0,
        reuse_servers: bool = True,
        echo: bool = True,
        say: Callable[[str], None] | None = None,
    ) -> None:
        from workflow.local.engine import LocalEngine

        self.config = config
        self.approve = approve or str(config.local.approve)
        if self.approve not in APPROVE_MODES:
            raise ConfigError(
                [f"approve mode {self.approve!r} is unknown; use one of {', '.join(APPROVE_MODES)}"]
            )
        self.echo = echo
        self.say: Callable[[str], None] = say or _print_stderr
        self.store = LocalStore(store_root(config, root))
        self.root = self.store.root
        self.engine = LocalEngine(
            region=config.region,
            account_id=config.account_id,
            time_scale=time_scale,
            poll_interval=poll_interval,
            s3=LocalS3(self.store),
        )
        self.outbox = Outbox(self.root, echo=self.say if echo else False)
        self.images = LocalImages(
            self.store, container_dir or default_container_dir(), config.ecr_repository
        )
        self.builder = LocalBuilder(
            self.images,
            use_docker=use_docker,
            region=config.region,
            account_id=config.account_id,
        )
        self.sagemaker = LocalSageMaker(
            store=self.store,
            resolve_image=self.images.resolve,
            settings=SageMakerSettings(
                region=config.region,
                account_id=config.account_id,
                stop_grace_seconds=stop_grace_seconds,
                reuse_servers=reuse_servers,
                kit_repository=config.ecr_repository,
                images=dict(config.local.images),
                deployment_time_scale=config.local.deployment_time_scale,
            ),
            log_sink=log_sink,
        )
        self.training = TrainingJobHandler(self.sagemaker)
        self.endpoints = EndpointHandlers(self.sagemaker)
        self.transform = TransformJobHandler(self.sagemaker)
        self.registry = ModelRegistry(self.store, self.sagemaker.settings)
        # What the template creates on AWS: the rollback alarms UpdateEndpoint names.
        self.cloudwatch = LocalCloudWatch(self.root, config.region, config.account_id)
        for alarm in rollback_alarms(config, config.endpoint.name):
            self.cloudwatch.put_metric_alarm(alarm)
        self.watcher = CallbackWatcher(self.root, self._deliver_callback)
        self.clients = LocalClients(
            self.store,
            self.outbox,
            builder=self.builder,
            engine=self.engine,
            secrets={APPROVAL_SECRET_ID: self._approval_key()},
            parameters=self._ssm_parameters(),
        )
        self._started_endpoints: set[str] = set()
        self._approval_server: Any = None
        self._previous_factory: Any = None
        self._installed = False
        self._register()

    # -- wiring -------------------------------------------------------------------------------
    def _register(self) -> None:
        engine = self.engine
        sm = "sagemaker"
        engine.register_service(
            sm, "createTrainingJob", self.training.start, self.training.poll, self.training.cancel
        )
        engine.register_service(
            sm, "createModel", ModelHandler(self.sagemaker, self.registry).start
        )
        engine.register_service(
            sm, "createEndpointConfig", EndpointConfigHandler(self.sagemaker).start
        )
        engine.register_service(sm, "createEndpoint", self._track(self.endpoints.create))
        engine.register_service(sm, "updateEndpoint", self._track(self.endpoints.update))
        engine.register_service(sm, "deleteEndpoint", self.endpoints.delete)
        engine.register_service("aws-sdk:sagemaker", "describeEndpoint", self.endpoints.describe)
        engine.register_service(
            sm,
            "createTransformJob",
            self.transform.start,
            self.transform.poll,
            self.transform.cancel,
        )
        for action, handler in self.registry.handlers().items():
            engine.register_service("aws-sdk:sagemaker", action, handler)
        engine.register_service("sns", "publish", SnsPublishHandler(self.outbox).start)
        engine.register_service("aws-sdk:ssm", "getParameter", self._get_parameter)
        engine.register_service("aws-sdk:codebuild", "batchGetBuilds", self.builder.describe_builds)
        lambdas = self.config.lambdas
        engine.register_lambda(lambdas.start_build, self._start_build)
        engine.register_lambda(lambdas.request_approval, self._request_approval)
        engine.register_lambda(lambdas.evaluate, self._evaluate)

    def _track(self, start: Callable[[Mapping[str, Any], Any], dict[str, Any]]) -> Any:
        def tracked(params: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
            result = start(params, ctx)
            self._started_endpoints.add(str(params.get("EndpointName")))
            return result

        return tracked

    def _approval_key(self) -> str:
        path = self.root / "secrets" / "approval-signing-key"
        if not path.is_file():
            # whole or nothing (mode 0600); a concurrent runtime's key wins and is read back
            with contextlib.suppress(ObjectExistsError):
                write_new(path, secrets.token_urlsafe(48).encode())
        return path.read_text().strip()

    def _ssm_parameters(self) -> dict[str, str]:
        folder = self.root / "ssm"
        if not folder.is_dir():
            return {}
        return {
            "/" + p.relative_to(folder).as_posix(): p.read_text().strip()
            for p in folder.rglob("*")
            if p.is_file()
        }

    def _get_parameter(self, params: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        name = str(params.get("Name", ""))
        try:
            return dict(LocalSsm(self._ssm_parameters()).get_parameter(Name=name))
        except ClientError as exc:
            from workflow.local.engine import TaskFailed

            raise TaskFailed(
                "Ssm.ParameterNotFoundException",
                f"{exc.response['Error']['Message']} Create it as the file "
                f"{self.root / 'ssm'}{name if name.startswith('/') else '/' + name}.",
            ) from exc

    # -- Lambdas ------------------------------------------------------------------------------
    def lambda_environment(self, function: str) -> dict[str, str]:
        """Return the environment a Lambda function gets locally (what the template sets)."""
        config = self.config
        if function == "start_build":
            return {
                "CODEBUILD_PROJECT": config.codebuild_project,
                "IMAGE_REPOSITORY_URI": self.images.uri("").rstrip(":"),
            }
        if function == "request_approval":
            return {
                "APPROVAL_SECRET_ID": APPROVAL_SECRET_ID,
                "APPROVAL_BUCKET": config.s3.bucket,
                "APPROVAL_PREFIX": f"{config.s3.prefix.strip('/')}/approvals/",
                "APPROVAL_API_URL": self.approval_api_url(),
                "APPROVAL_TOPIC_ARN": config.notification.topic_arn,
                "APPROVAL_LINK_TTL_SECONDS": str(config.approval.link_ttl_seconds),
            }
        return {}

    def approval_api_url(self) -> str:
        """The approval API's URL: a loopback server in manual mode (started on first use)."""
        if self.approve != "manual":
            return LOCAL_APPROVAL_URL
        if self._approval_server is None:
            from workflow.local.approval_server import ApprovalServer

            self._approval_server = ApprovalServer(self._approval_api).start()
        return str(self._approval_server.url)

    def _approval_api(self, event: Mapping[str, Any]) -> Mapping[str, Any]:
        from workflow.lambdas import approval

        environ = self.lambda_environment("request_approval")
        with self._clients_installed():
            return approval.api_handler(event, None, environ=environ)

    def _clients_installed(self) -> Any:
        from workflow.lambdas import clients

        return clients.use_clients(self.clients) if not self._installed else _nothing()

    def _start_build(self, payload: Any, ctx: Any) -> Any:
        from workflow.lambdas import start_build

        return start_build.handler(payload, None, environ=self.lambda_environment("start_build"))

    def _evaluate(self, payload: Any, ctx: Any) -> Any:
        from workflow.lambdas import evaluate

        return evaluate.handler(payload, None)

    def _request_approval(self, payload: Any, ctx: Any) -> Any:
        from workflow.lambdas import approval

        result = approval.request_handler(
            payload, None, environ=self.lambda_environment("request_approval")
        )
        token = str(payload.get("TaskToken") or getattr(ctx, "task_token", "") or "")
        if not token:
            return result
        execution = str(getattr(ctx, "execution_arn", ""))
        state = str(getattr(ctx, "state_name", ""))
        if self.approve == "auto":
            verdict = auto_verdict(self.config, payload, getattr(ctx, "execution_input", None))
            threading.Thread(
                target=self._answer_later, args=(token, verdict), name="auto-approve", daemon=True
            ).start()
        else:
            path = self.watcher.watch(token, execution, state)
            if self.echo:
                self.say(
                    "[approval] the model waits for your decision (request: "
                    f"{path}).\n  approve:  python -m workflow approve {token}\n"
                    f"  reject:   python -m workflow reject {token}\n"
                    f"  or open the links of the email in {self.outbox.path} (served locally "
                    f"at {self.approval_api_url()})"
                )
        return result

    def _answer_later(self, token: str, verdict: tuple[bool, str]) -> None:
        approved, reason = verdict

        def answer() -> None:
            if approved:
                self.engine.send_task_success(
                    token, {"Approved": True, "Mode": "auto", "Reason": reason}
                )
            else:
                self.engine.send_task_failure(token, ERROR_REJECTED, reason)

        # The task may not wait on the token yet: try again for up to 10 s.
        error = retry_until_deadline(answer, seconds=10, pause=0.05)
        if error is not None:
            logger.error("could not answer the approval token: %s", error)
            return
        if self.echo:
            word = "approved" if approved else "rejected"
            self.say(f"[approval] auto-{word}: {reason}")

    def _deliver_callback(self, token: str, response: Mapping[str, Any]) -> None:
        if response.get("status") == "success":
            self.engine.send_task_success(token, response.get("output") or {})
            outcome = "approved"
        else:
            self.engine.send_task_failure(
                token,
                str(response.get("error") or ERROR_REJECTED),
                str(response.get("cause") or ""),
            )
            outcome = "rejected"
        if self.echo:
            self.say(f"[approval] {outcome} from the command line")

    # -- lifecycle ----------------------------------------------------------------------------
    def install(self) -> None:
        """Point ``workflow.lambdas.clients`` at the local clients."""
        from workflow.lambdas import clients

        if not self._installed:
            self._previous_factory = clients.set_client_factory(self.clients)
            self._installed = True

    def close(self, keep_endpoints: bool = False) -> None:
        """Stop running jobs, the callback watcher and (unless kept) the endpoints started here."""
        self.training.stop_all()
        self.transform.stop_all()
        self.watcher.close()
        self.builder.wait(timeout=30)
        self.endpoints.wait_idle(timeout=self.sagemaker.settings.ping_timeout_seconds)
        self.sagemaker.warm.stop_all()
        if self._approval_server is not None:
            self._approval_server.stop()
            self._approval_server = None
        if not keep_endpoints:
            for name in sorted(self._started_endpoints):
                stop_endpoint(self.sagemaker, name, self.sagemaker.settings.stop_grace_seconds)
        if self._installed:
            from workflow.lambdas import clients

            clients.set_client_factory(self._previous_factory)
            self._installed = False

    def endpoint_url(self, name: str) -> str | None:
        """Return the URL of a running local endpoint, or ``None``."""
        for record in endpoint_records(self.sagemaker):
            if record.get("EndpointName") == name and record.get("Running"):
                return str(record.get("Url"))
        return None

    def __enter__(self) -> LocalRuntime:
        self.install()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


def _print_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def auto_verdict(
    config: WorkflowConfig, payload: Mapping[str, Any], execution_input: Any = None
) -> tuple[bool, str]:
    """Decide an automatic approval: approve when the gate metric passes (or is absent).

    The threshold is the one the execution's QualityGate used: the execution input's
    ``GateThreshold`` (``local.gate_threshold`` for ``run --local``), else ``gate.threshold``.

    Args:
        config: The configuration (the gate's metric; its threshold when the input has none).
        payload: The RequestApproval payload (``Metrics`` holds the evaluation).
        execution_input: The execution input (``$$.Execution.Input``), or None.

    Returns:
        ``(approved, reason)``.
    """
    metrics = payload.get("Metrics") if isinstance(payload, Mapping) else None
    if isinstance(metrics, Mapping) and isinstance(metrics.get("Payload"), Mapping):
        metrics = metrics["Payload"]
    metric = str(config.gate.metric)
    value = metrics.get(metric) if isinstance(metrics, Mapping) else None
    if not config.gate.enabled or not isinstance(value, (int, float)):
        return True, "the quality gate passed before the approval step"
    threshold: Any = config.gate.threshold
    given = (
        execution_input.get(GATE_THRESHOLD_KEY) if isinstance(execution_input, Mapping) else None
    )
    if isinstance(given, (int, float)) and not isinstance(given, bool):
        threshold = given
    if value >= threshold:
        return True, f"{metric}={value:.4f} >= threshold {threshold:g}"
    return False, f"{metric}={value:.4f} < threshold {threshold:g}"
