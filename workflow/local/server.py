"""Serve the Step Functions API on 127.0.0.1, backed by a `LocalEngine` (the notebook path).

The notebooks call the Step Functions Data Science SDK (`Workflow.create()`, `execute()`,
`get_output()`, `list_events()`) exactly as on AWS; in local mode only the Step Functions client
points at this server::

    url, stop = serve_stepfunctions_api(engine)
    sfn = boto3.client("stepfunctions", endpoint_url=url)   # or AWS_ENDPOINT_URL_SFN=url
    workflow = Workflow(name, definition, role, client=sfn)
    ...
    stop()

The server is moto's `ThreadedMotoServer` with moto's Step Functions backend executing state
machines; every execution runs through the engine (its handlers, listeners, patches), and
`SendTaskSuccess`/`SendTaskFailure` over HTTP resume waiting task tokens. moto's backends are
process-wide, so one engine can be served per process at a time.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable
from typing import Any

from workflow.local.engine import EngineError, LocalEngine
from workflow.local.interpreter import backend as mp

logger = logging.getLogger(__name__)

_LOCK = threading.Lock()
_SERVING: list[LocalEngine] = []


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_stepfunctions_api(
    engine: LocalEngine, host: str = "127.0.0.1", port: int = 0
) -> tuple[str, Callable[[], None]]:
    """Start a Step Functions API server whose executions run through `engine`.

    Args:
        engine: The engine whose handlers run the Task states.
        host: A loopback address to bind (the server is never exposed).
        port: The port; 0 picks a free ephemeral one.

    Returns:
        `(url, stop)`: the endpoint URL (`http://127.0.0.1:PORT`) and a function that stops the
        server, aborts the executions still running and forgets the state machines.

    Raises:
        EngineError: `host` is not a loopback address, or an engine is already served.
    """
    if not _is_loopback(host):
        raise EngineError(
            f"host = {host!r} is not a loopback address; the local Step Functions API only "
            "binds 127.0.0.1 (or ::1, localhost)"
        )
    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    with _LOCK:
        if _SERVING:
            raise EngineError(
                "a local Step Functions API is already served in this process; call its stop() "
                "before serving another engine"
            )
        mp.apply_backend_patches()
        sfn_config = default_user_config.setdefault("stepfunctions", {})
        previous = sfn_config.get("execute_state_machine", False)
        sfn_config["execute_state_machine"] = True
        mp.set_backend_worker_factory(engine._backend_worker)
        server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        try:
            server.start()
        except Exception:
            mp.set_backend_worker_factory(None)
            sfn_config["execute_state_machine"] = previous
            raise
        _SERVING.append(engine)
    bound_host, bound_port = server.get_host_and_port()
    url = f"http://{bound_host}:{bound_port}"
    logger.info("local Step Functions API on %s", url)
    stopped = threading.Event()

    def stop() -> None:
        with _LOCK:
            if stopped.is_set():
                return
            stopped.set()
            server.stop()
            _abort_running_executions()
            mp.set_backend_worker_factory(None)
            sfn_config["execute_state_machine"] = previous
            _SERVING.clear()
        logger.info("local Step Functions API on %s stopped", url)

    return url, stop


def _abort_running_executions() -> None:
    import datetime as dt

    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    now = dt.datetime.now(tz=dt.timezone.utc)
    for account in list(stepfunctions_parser_backends.values()):
        for backend in list(account.values()):
            for machine in list(getattr(backend, "state_machines", [])):
                for execution in list(getattr(machine, "executions", [])):
                    worker: Any = getattr(execution, "exec_worker", None)
                    if worker is not None and getattr(worker, "env", None) is not None:
                        worker.env.set_stop(stop_date=now, cause="server stopped", error=None)
            backend.reset()
