"""The local endpoints still running, seen from any terminal: list them, stop them.

Local endpoints are ``serve`` processes recorded in the local store (`sagemaker_endpoints`);
``python -m workflow endpoints`` and the notebook runner manage them through these functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workflow.errors import WorkflowError
from workflow.local.sagemaker import LocalSageMaker
from workflow.local.sagemaker_endpoints import endpoint_records, stop_endpoint
from workflow.local.store import LocalStore


def store_sagemaker(root: str | Path) -> LocalSageMaker:
    """Return the local SageMaker of a store, able to read and stop endpoints (not to run)."""

    def no_images(uri: str) -> Any:
        raise WorkflowError(f"image {uri} is not needed to list or stop endpoints")

    return LocalSageMaker(store=LocalStore(root), resolve_image=no_images, log_sink=None)


def list_endpoints(root: str | Path) -> list[dict[str, Any]]:
    """Return one row per recorded endpoint: name, status, running, url, pid, config, files."""
    return [
        {
            "name": record.get("EndpointName"),
            "status": record.get("EndpointStatus"),
            "running": record.get("Running"),
            "url": record.get("Url"),
            "pid": record.get("Pid"),
            "config": record.get("EndpointConfigName"),
            "model_dir": record.get("ModelDir"),
            "log": record.get("LogPath"),
        }
        for record in endpoint_records(store_sagemaker(root))
    ]


def stop_endpoints(root: str | Path, names: list[str] | None) -> list[str]:
    """Stop the named endpoints (None: all of them); return the names stopped, in order.

    Raises:
        WorkflowError: a name is not a recorded endpoint (those before it are stopped).
    """
    sm = store_sagemaker(root)
    if names is None:
        names = [str(r["EndpointName"]) for r in endpoint_records(sm)]
    stopped = []
    for name in names:
        if not stop_endpoint(sm, name):
            known = [r["EndpointName"] for r in endpoint_records(sm)]
            raise WorkflowError(
                f"there is no local endpoint named {name!r} (local endpoints: {known or 'none'}); "
                "see 'python -m workflow endpoints list'"
            )
        stopped.append(name)
    return stopped


def running_endpoints(root: str | Path) -> dict[str, int]:
    """Return ``{endpoint name: pid}`` of the local endpoints running in a store."""
    return {
        str(r["EndpointName"]): int(r["Pid"])
        for r in endpoint_records(store_sagemaker(root))
        if r.get("Running") and isinstance(r.get("Pid"), int)
    }


def stop_new_endpoints(root: str | Path, before: Mapping[str, int]) -> list[str]:
    """Stop the endpoints that run now but did not (with the same process) before."""
    sm = store_sagemaker(root)
    stopped = []
    for name, pid in running_endpoints(root).items():
        if before.get(name) != pid and stop_endpoint(sm, name):
            stopped.append(name)
    return stopped
