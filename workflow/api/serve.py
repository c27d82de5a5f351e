"""Serve the local AWS endpoint until a signal: what ``python -m workflow api`` runs."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable

from workflow.config import WorkflowConfig


def serve_until_signal(
    config: WorkflowConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    approve: str | None = None,
    ready: Callable[[str], None],
) -> None:
    """Serve `LocalAwsApi` on the local runtime until SIGINT or SIGTERM, then stop everything.

    Args:
        config: the configuration (``local.*``: the store, approvals, jobs).
        host: the loopback address to bind.
        port: the port (0: a free one).
        approve: how approval tasks are answered (default: ``local.approve``).
        ready: called with the URL once the server answers.
    """
    from workflow.api.server import ApiServer, LocalAwsApi
    from workflow.local.runtime import LocalRuntime

    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    runtime = LocalRuntime(config, approve=approve)
    try:
        runtime.install()
        server = ApiServer(LocalAwsApi(runtime.engine, runtime.sagemaker), host, port)
        with server:
            ready(server.url)
            while not stop.wait(0.5):
                pass
            print("stopping the local AWS API", file=sys.stderr, flush=True)
    finally:
        runtime.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
