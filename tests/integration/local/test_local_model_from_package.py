"""CreateModel from a model package: the local registry resolves the package's container.

AWS: ``ContainerDefinition.ModelPackageName`` names the package whose image and artifact the
model runs (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ContainerDefinition.html).
"""

from __future__ import annotations

from typing import Any

import pytest

from workflow.local.engine import TaskFailed
from workflow.local.model_registry import ModelRegistry
from workflow.local.sagemaker import MODELS, LocalSageMaker
from workflow.local.sagemaker_endpoints import ModelHandler

pytestmark = pytest.mark.integration


def _package(registry: ModelRegistry, uri: str) -> str:
    registry.create_group({"ModelPackageGroupName": "kit"})
    container = {"Image": "fake:1", "ModelDataUrl": uri, "Environment": {"SOURCE_COMMIT": "abc"}}
    created = registry.create_package(
        {
            "ModelPackageGroupName": "kit",
            "ModelApprovalStatus": "Approved",
            "InferenceSpecification": {
                "Containers": [container],
                "SupportedContentTypes": ["application/x-image"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        }
    )
    return str(created["ModelPackageArn"])


def test_the_model_takes_the_packages_image_and_artifact(
    fake_sagemaker: LocalSageMaker, model_tarball: Any
) -> None:
    sm = fake_sagemaker
    registry = ModelRegistry(sm.store, sm.settings)
    uri = model_tarball(sm.store, "s3://bucket/models/m/model.tar.gz", "packaged")
    arn = _package(registry, uri)
    ModelHandler(sm, registry).start(
        {
            "ModelName": "m-deploy",
            "ExecutionRoleArn": "arn:aws:iam::0:role/x",
            "PrimaryContainer": {"ModelPackageName": arn},
        },
        None,
    )
    record = sm.records.get(MODELS, "m-deploy")
    assert record is not None
    assert record["PrimaryContainer"] == {
        "ModelPackageName": arn,
        "Image": "fake:1",
        "ModelDataUrl": uri,
        "Environment": {"SOURCE_COMMIT": "abc"},
    }


def test_an_unknown_package_or_no_registry_is_refused(fake_sagemaker: LocalSageMaker) -> None:
    sm = fake_sagemaker
    arn = "arn:aws:sagemaker:us-east-1:000000000000:model-package/kit/7"
    params = {"ModelName": "m", "PrimaryContainer": {"ModelPackageName": arn}}
    with pytest.raises(TaskFailed, match="does not exist"):
        ModelHandler(sm, ModelRegistry(sm.store, sm.settings)).start(params, None)
    with pytest.raises(TaskFailed, match="has no model registry"):
        ModelHandler(sm).start(params, None)
