"""The local AWS endpoint: one loopback HTTP server that speaks each service's protocol.

Requests are dispatched on the protocol, as AWS's front ends do:

=======================================================  =====================================
``X-Amz-Target: AWSStepFunctions.<Op>`` (JSON 1.0)         Step Functions (:mod:`.stepfunctions`)
``X-Amz-Target: SageMaker.<Op>`` (JSON 1.1)                SageMaker (:mod:`.sagemaker`)
``POST /endpoints/<name>/invocations`` (REST)              SageMaker Runtime ``InvokeEndpoint``
``X-Amz-Target: GraniteServiceVersion20100801.<Op>``      CloudWatch (:mod:`.cloudwatch`), what
(JSON 1.0)                                                 botocore 1.44 sends
``POST /service/GraniteServiceVersion20100801/operation``  CloudWatch in Smithy RPC v2 CBOR
``/<Op>`` with ``smithy-protocol: rpc-v2-cbor``            (CloudWatch's first listed protocol)
``POST /`` form ``Action=<Op>&Version=2010-08-01``         CloudWatch in the query protocol (XML,
                                                           :mod:`.query`), for older clients
=======================================================  =====================================

Errors are JSON (CBOR for a CBOR request) with the code in ``__type`` and ``x-amzn-ErrorType``
(what botocore reads), and CloudWatch's query code in ``x-amzn-query-error``, never HTML. The ``Host`` header is not checked, so botocore's ``sync-`` host prefix reaches the
same server when the client's resolver maps it here; with an IP endpoint a client turns the
prefix off (``AWS_DISABLE_HOST_PREFIX_INJECTION=true`` or ``Config(inject_host_prefix=False)``).
The HTTP stack is Werkzeug's threaded WSGI server.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import socket
import threading
import uuid
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from workflow.api.cloudwatch import NAMESPACE as CLOUDWATCH_NAMESPACE
from workflow.api.cloudwatch import QUERY_ERRORS, CloudWatchApi
from workflow.api.cloudwatch import TARGET_PREFIX as CLOUDWATCH_TARGET
from workflow.api.errors import ApiError
from workflow.api.query import error_xml, operation_shapes, parse_form, response_xml
from workflow.api.sagemaker import ModelError, SageMakerApi
from workflow.api.stepfunctions import StepFunctionsApi
from workflow.api.wire import cbor_dumps, cbor_loads, dumps
from workflow.errors import WorkflowError
from workflow.local.cloudwatch import LocalCloudWatch
from workflow.local.engine import LocalEngine
from workflow.local.sagemaker import LocalSageMaker

logger = logging.getLogger(__name__)

_INVOCATIONS = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
_REQUEST_ID = "workflow.request_id"
_FORM = "application/x-www-form-urlencoded"
_RPC_V2 = re.compile(r"^/service/(?P<service>[^/]+)/operation/(?P<operation>[^/]+)$")
_CONTENT_TYPES = {
    "AWSStepFunctions": "application/x-amz-json-1.0",
    CLOUDWATCH_TARGET: "application/x-amz-json-1.0",
}
_SERVICE_NAMESPACES = {
    "AWSStepFunctions": "com.amazonaws.sfn",
    "SageMaker": "com.amazonaws.sagemaker",
    CLOUDWATCH_TARGET: CLOUDWATCH_NAMESPACE,
}


class ApiServerError(WorkflowError):
    """The API cannot listen where it was asked to (a non-loopback address, a taken port)."""

    exit_code = 2


class LocalAwsApi:
    """The WSGI application: Step Functions over ``engine``, SageMaker over ``sagemaker``."""

    def __init__(self, engine: LocalEngine, sagemaker: LocalSageMaker | None = None) -> None:
        self.stepfunctions = StepFunctionsApi(engine)
        self.sagemaker = SageMakerApi(sagemaker) if sagemaker is not None else None
        self.cloudwatch = (
            CloudWatchApi(
                LocalCloudWatch(
                    sagemaker.store.root, sagemaker.settings.region, sagemaker.settings.account_id
                )
            )
            if sagemaker is not None
            else None
        )
        self._targets: dict[str, dict[str, Any]] = {
            "AWSStepFunctions": self.stepfunctions.operations(),
            "SageMaker": self.sagemaker.operations() if self.sagemaker else {},
            CLOUDWATCH_TARGET: self.cloudwatch.operations() if self.cloudwatch else {},
        }

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        """Serve one request (the WSGI entry point)."""
        request = Request(environ)
        request_id = str(uuid.uuid4())
        environ[_REQUEST_ID] = request_id
        try:
            response = self._dispatch(request)
        except ApiError as exc:
            response = _error(exc, request)
        except Exception as exc:  # an internal bug: still a JSON error, with the traceback logged
            logger.exception("the local AWS API failed on %s", request.headers.get("X-Amz-Target"))
            response = _error(ApiError("InternalFailure", f"internal error: {exc}", 500), request)
        response.headers["x-amzn-RequestId"] = request_id
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        rpc = _RPC_V2.match(request.path)
        if rpc and request.method == "POST":
            return self._rpc_v2(rpc.group("service"), rpc.group("operation"), request)
        target = request.headers.get("X-Amz-Target", "")
        if _is_query(request):
            return self._query(request)
        if target:
            prefix, _, operation = target.partition(".")
            table = self._targets.get(prefix)
            handler = table.get(operation) if table is not None else None
            if handler is None:
                raise ApiError(
                    "UnknownOperationException",
                    f"the local AWS API does not serve {target!r}",
                )
            try:
                body = json.loads(request.get_data() or b"{}")
            except ValueError as exc:
                raise ApiError("SerializationException", f"the body is not JSON: {exc}") from exc
            result = handler(body if isinstance(body, dict) else {})
            content_type = _CONTENT_TYPES.get(prefix, "application/x-amz-json-1.1")
            return Response(dumps(result), status=200, content_type=content_type)
        match = _INVOCATIONS.match(request.path)
        if match and request.method == "POST" and self.sagemaker is not None:
            status, data, headers = self.sagemaker.invoke(
                match.group("name"), request.get_data(), dict(request.headers)
            )
            return Response(data, status=status, headers=headers)
        if request.method == "GET" and request.path in ("/", "/health"):
            served = {k: sorted(v) for k, v in self._targets.items()}
            served["SageMakerRuntime"] = ["InvokeEndpoint"] if self.sagemaker else []
            served["CloudWatch"] = served.pop(CLOUDWATCH_TARGET)
            return Response(json.dumps({"services": served}), content_type="application/json")
        raise ApiError(
            "UnknownOperationException",
            f"the local AWS API has no route for {request.method} {request.path}",
            status=404,
        )

    def _rpc_v2(self, service: str, operation: str, request: Request) -> Response:
        """Smithy RPC v2 CBOR: ``POST /service/<service>/operation/<operation>``."""
        handler = self._targets.get(service, {}).get(operation)
        if handler is None:
            raise ApiError(
                "UnknownOperationException",
                f"the local AWS API does not serve {service}.{operation} in RPC v2 CBOR",
            )
        result = handler(cbor_loads(request.get_data()))
        response = Response(cbor_dumps(result), status=200, content_type="application/cbor")
        response.headers["smithy-protocol"] = "rpc-v2-cbor"
        return response

    def _query(self, request: Request) -> Response:
        """The query protocol: ``POST /`` with a form naming the ``Action`` (CloudWatch only)."""
        form = request.form
        operation = form.get("Action", "")
        handler = self._targets.get(CLOUDWATCH_TARGET, {}).get(operation)
        if handler is None:
            raise ApiError(
                "InvalidAction", f"the local AWS API does not serve the query action {operation!r}"
            )
        input_shape, _ = operation_shapes(operation)
        body = parse_form(form, input_shape) if input_shape is not None else {}
        data = response_xml(operation, handler(body), request.environ[_REQUEST_ID])
        return Response(data, status=200, content_type="text/xml")

    def close(self) -> None:
        """Stop the executions still running and the endpoints created through the API."""
        self.stepfunctions.close()
        if self.sagemaker is not None:
            self.sagemaker.close()


def _error(exc: ApiError, request: Request) -> Response:
    target = request.headers.get("X-Amz-Target", "")
    prefix = target.partition(".")[0]
    rpc = _RPC_V2.match(request.path)
    if rpc:
        prefix = rpc.group("service")
    query = QUERY_ERRORS.get(exc.code, (0, ""))[1] if prefix == CLOUDWATCH_TARGET else ""
    if _is_query(request):
        data = error_xml(exc.code, exc.message, str(request.environ.get(_REQUEST_ID, "")))
        return Response(data, status=exc.status, content_type="text/xml")
    if rpc:
        namespace = _SERVICE_NAMESPACES.get(prefix, "com.amazonaws")
        data = cbor_dumps({"__type": f"{namespace}#{exc.code}", "message": exc.message})
        response = Response(data, status=exc.status, content_type="application/cbor")
        response.headers["smithy-protocol"] = "rpc-v2-cbor"
        if query:
            response.headers["x-amzn-query-error"] = query
        return response
    body: dict[str, Any] = {"message": exc.message}
    if prefix in _SERVICE_NAMESPACES:
        body["__type"] = f"{_SERVICE_NAMESPACES[prefix]}#{exc.code}"
        body["Message"] = exc.message
    else:  # SageMaker Runtime (REST JSON)
        body["Message"] = exc.message
        if isinstance(exc, ModelError):
            body.update(exc.fields)
    response = Response(json.dumps(body), status=exc.status, content_type="application/json")
    response.headers["x-amzn-ErrorType"] = f"{exc.code}:"
    if query:
        response.headers["x-amzn-query-error"] = query
    return response


def _is_query(request: Request) -> bool:
    """A query-protocol request: a form ``POST /`` with no ``X-Amz-Target``."""
    return (
        request.method == "POST"
        and request.path == "/"
        and not request.headers.get("X-Amz-Target")
        and (request.mimetype or "") == _FORM
    )


class _RequestLog(WSGIRequestHandler):
    """One plain log line per request (operation and status) on this package's logger."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        target = self.headers.get("X-Amz-Target") or f"{self.command} {self.path}"
        logger.info("%s %s", target, getattr(code, "value", code))


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback name or address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ApiServer:
    """The application on a loopback port, served from a background thread.

    Args:
        app: The application.
        host: A loopback address (the API is never exposed).
        port: The port; 0 picks a free one.

    Raises:
        ApiServerError: ``host`` is not a loopback address, or the port is taken.
    """

    def __init__(self, app: LocalAwsApi, host: str = "127.0.0.1", port: int = 0) -> None:
        if not is_loopback(host):
            raise ApiServerError(
                f"--host {host!r} is not a loopback address; the local AWS API binds only "
                "127.0.0.1, ::1 or localhost (use --host 127.0.0.1)"
            )
        self.app = app
        # Bind here: Werkzeug answers a taken port by printing and exiting the process.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            listener = socket.create_server((host, port), family=family)
        except OSError as exc:
            raise ApiServerError(
                f"cannot listen on {host}:{port} ({os.strerror(exc.errno) if exc.errno else exc}); "
                "pick another --port, "
                "or 0 for a free one"
            ) from exc
        with listener:  # the server keeps its own duplicate of the socket
            self._server = make_server(
                host, port, app, threaded=True, request_handler=_RequestLog, fd=listener.fileno()
            )
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        bound_host = str(self._server.server_address[0])
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.url = f"http://{shown}:{self._server.server_address[1]}"

    def start(self) -> ApiServer:
        """Serve in a background thread; return self once the socket accepts requests."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="local-aws-api", daemon=True
        )
        self._thread.start()
        logger.info("local AWS API on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and stop the executions still running (idempotent)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()
        self.app.close()
        logger.info("local AWS API on %s stopped", self.url)

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["ApiServer", "ApiServerError", "LocalAwsApi", "is_loopback"]
