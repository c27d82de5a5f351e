"""The local UpdateEndpoint accepts the DeploymentConfig the definition sends (AWS shapes).

The document is the one AWS runs, so the local runtime must take its ``UpdateEndpoint``
parameters (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateEndpoint.html,
``DeploymentConfig``: API_DeploymentConfig.html) and still end ``InService`` on the new
configuration.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from workflow.config import load_config
from workflow.definition import render_definition
from workflow.local.sagemaker import LocalSageMaker
from workflow.local.sagemaker_endpoints import (
    EndpointConfigHandler,
    EndpointHandlers,
    ModelHandler,
    stop_endpoint,
)

pytestmark = pytest.mark.integration


def _deployable(sm: LocalSageMaker, name: str, write: Any) -> str:
    """A model and its one-variant configuration; return the configuration's name."""
    uri = write(sm.store, f"s3://bucket/models/{name}/model.tar.gz", name)
    container = {"Image": "fake:1", "ModelDataUrl": uri}
    ModelHandler(sm).start({"ModelName": name, "PrimaryContainer": container}, None)
    variant = {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 2}
    config = {"EndpointConfigName": f"{name}-cfg", "ProductionVariants": [variant]}
    EndpointConfigHandler(sm).start(config, None)
    return f"{name}-cfg"


def _settled(handlers: EndpointHandlers, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        describe = handlers.describe({"EndpointName": name}, None)
        if describe["EndpointStatus"] not in ("Creating", "Updating"):
            return describe
        assert time.monotonic() < deadline, describe
        time.sleep(0.1)


def test_update_with_the_rendered_deployment_config(
    fake_sagemaker: LocalSageMaker, model_tarball: Any
) -> None:
    config = load_config(path=None, environ={}, overrides={"endpoint.initial_instance_count": 2})
    update = render_definition(config)["States"]["UpdateEndpoint"]["Parameters"]
    deployment = update["DeploymentConfig"]
    assert deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    sm = fake_sagemaker
    handlers = EndpointHandlers(sm)
    old, new = (_deployable(sm, name, model_tarball) for name in ("blue", "green"))
    try:
        handlers.create({"EndpointName": "ep", "EndpointConfigName": old}, None)
        assert _settled(handlers, "ep")["EndpointStatus"] == "InService"
        params = {"EndpointName": "ep", "EndpointConfigName": new, "DeploymentConfig": deployment}
        handlers.update(params, None)
        describe = _settled(handlers, "ep")
        assert (describe["EndpointStatus"], describe["EndpointConfigName"]) == ("InService", new)
    finally:
        handlers.wait_idle()
        stop_endpoint(sm, "ep", grace=3)
