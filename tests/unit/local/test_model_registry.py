"""The local model registry: SageMaker's shapes for groups, versioned packages and approval.

Shapes and constraints are those of
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelPackageGroup.html,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelPackage.html,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeModelPackage.html,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListModelPackages.html and
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateModelPackage.html; versions
count 1, 2, ... in a group (https://docs.aws.amazon.com/sagemaker/latest/dg/model-registry-models.html).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from workflow.local.engine import TaskFailed
from workflow.local.model_registry import ModelRegistry
from workflow.local.sagemaker import SageMakerSettings
from workflow.local.store import LocalStore

SPEC = {
    "Containers": [{"Image": "local/mask-r-cnn:abc", "ModelDataUrl": "s3://b/m/model.tar.gz"}],
    "SupportedContentTypes": ["application/x-image"],
    "SupportedResponseMIMETypes": ["application/json"],
}


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    settings = SageMakerSettings(region="eu-west-1", account_id="123456789012")
    return ModelRegistry(LocalStore(tmp_path), settings)


def _register(registry: ModelRegistry, group: str = "Kit", **extra: Any) -> str:
    params = {"ModelPackageGroupName": group, "InferenceSpecification": SPEC, **extra}
    return str(registry.create_package(params)["ModelPackageArn"])


def test_group_is_created_once(registry: ModelRegistry) -> None:
    arn = registry.create_group({"ModelPackageGroupName": "Kit"})["ModelPackageGroupArn"]
    assert arn == "arn:aws:sagemaker:eu-west-1:123456789012:model-package-group/kit"
    with pytest.raises(TaskFailed) as failure:
        registry.create_group({"ModelPackageGroupName": "Kit"})
    assert failure.value.error == "SageMaker.SageMakerException"
    assert "already exists" in failure.value.cause
    assert registry.describe_group({"ModelPackageGroupName": arn})["ModelPackageGroupName"] == "Kit"


def test_packages_are_versioned_and_pending_by_default(registry: ModelRegistry) -> None:
    registry.create_group({"ModelPackageGroupName": "Kit"})
    first = _register(registry, MetadataProperties={"CommitId": "abc1234"})
    second = _register(registry, ModelApprovalStatus="PendingManualApproval")
    assert first == "arn:aws:sagemaker:eu-west-1:123456789012:model-package/kit/1"
    assert second.endswith("model-package/kit/2")
    described = registry.describe_package({"ModelPackageName": first})
    assert described["ModelPackageGroupName"] == "Kit"
    assert described["ModelPackageVersion"] == 1
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert described["ModelPackageStatus"] == "Completed"
    assert described["InferenceSpecification"] == SPEC
    assert described["MetadataProperties"] == {"CommitId": "abc1234"}
    assert isinstance(described["CreationTime"], int)


def test_a_package_needs_an_existing_group_and_a_container(registry: ModelRegistry) -> None:
    with pytest.raises(TaskFailed, match="does not exist"):
        _register(registry, "Missing")
    registry.create_group({"ModelPackageGroupName": "Kit"})
    with pytest.raises(TaskFailed, match="InferenceSpecification"):
        registry.create_package({"ModelPackageGroupName": "Kit"})
    with pytest.raises(TaskFailed, match="enum value set"):
        _register(registry, ModelApprovalStatus="Maybe")


def test_update_sets_the_decision_and_keeps_the_rest(registry: ModelRegistry) -> None:
    registry.create_group({"ModelPackageGroupName": "Kit"})
    arn = _register(registry, CustomerMetadataProperties={"TrainingData": "s3://b/train/"})
    answer = registry.update_package(
        {
            "ModelPackageArn": arn,
            "ModelApprovalStatus": "Rejected",
            "ApprovalDescription": "rejected by alice: masks too coarse",
            "CustomerMetadataProperties": {"Reviewer": "alice"},
        }
    )
    assert answer == {"ModelPackageArn": arn}
    described = registry.describe_package({"ModelPackageName": arn})
    assert described["ModelApprovalStatus"] == "Rejected"
    assert described["ApprovalDescription"] == "rejected by alice: masks too coarse"
    assert described["CustomerMetadataProperties"] == {
        "TrainingData": "s3://b/train/",
        "Reviewer": "alice",
    }
    assert described["InferenceSpecification"] == SPEC
    with pytest.raises(TaskFailed, match="length"):
        registry.update_package({"ModelPackageArn": arn, "ApprovalDescription": "x" * 1025})
    with pytest.raises(TaskFailed, match="does not exist"):
        registry.update_package(
            {"ModelPackageArn": arn[:-1] + "9", "ModelApprovalStatus": "Approved"}
        )
    with pytest.raises(TaskFailed, match="versioned"):
        registry.describe_package({"ModelPackageName": "Kit"})


def test_list_filters_sorts_and_pages(registry: ModelRegistry) -> None:
    registry.create_group({"ModelPackageGroupName": "Kit"})
    arns = [_register(registry) for _ in range(3)]
    registry.update_package({"ModelPackageArn": arns[1], "ModelApprovalStatus": "Approved"})
    listed = registry.list_packages({"ModelPackageGroupName": "Kit"})["ModelPackageSummaryList"]
    assert [s["ModelPackageVersion"] for s in listed] == [3, 2, 1]  # newest first
    approved = registry.list_packages(
        {"ModelPackageGroupName": "Kit", "ModelApprovalStatus": "Approved"}
    )
    assert [s["ModelPackageArn"] for s in approved["ModelPackageSummaryList"]] == [arns[1]]
    page = registry.list_packages({"MaxResults": 2, "SortOrder": "Ascending"})
    assert [s["ModelPackageVersion"] for s in page["ModelPackageSummaryList"]] == [1, 2]
    rest = registry.list_packages(
        {"MaxResults": 2, "SortOrder": "Ascending", "NextToken": page["NextToken"]}
    )
    assert [s["ModelPackageVersion"] for s in rest["ModelPackageSummaryList"]] == [3]
    assert "NextToken" not in rest


def test_records_live_in_the_store(registry: ModelRegistry, tmp_path: Path) -> None:
    registry.create_group({"ModelPackageGroupName": "Kit"})
    _register(registry)
    record = json.loads((tmp_path / "sagemaker/model-packages/Kit/1.json").read_text())
    assert record["ModelApprovalStatus"] == "PendingManualApproval"
    assert (tmp_path / "sagemaker/model-package-groups/Kit.json").is_file()
