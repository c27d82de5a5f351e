"""The SageMaker model registry of the local runtime: model package groups and versioned packages.

The records live in the local store next to the other SageMaker records:
``<root>/sagemaker/model-package-groups/<group>.json`` and
``<root>/sagemaker/model-packages/<group>/<version>.json``. The operations answer in the shapes
of SageMaker's API, for the state machine's ``aws-sdk:sagemaker:*`` tasks (`ModelRegistry.handlers`)
and for boto3 through ``python -m workflow api``:

- ``CreateModelPackageGroup`` -> ``ModelPackageGroupArn``; a group that exists fails.
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelPackageGroup.html
- ``CreateModelPackage`` (versioned: ``ModelPackageGroupName``) -> ``ModelPackageArn``
  ``arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>``, versions 1, 2, ...
  in the group; the group must exist.
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelPackage.html
- ``DescribeModelPackage`` (the package's ARN) and ``ListModelPackages`` (a group, an approval
  status, paging).
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeModelPackage.html
- ``UpdateModelPackage``: ``ModelApprovalStatus`` (``Approved``, ``Rejected``,
  ``PendingManualApproval``), ``ApprovalDescription``, ``CustomerMetadataProperties``.
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateModelPackage.html

A record is written whole and new (never overwritten) when created; only ``UpdateModelPackage``
rewrites one, atomically. Failures raise `TaskFailed` with ``SageMaker.SageMakerException``, the
name Step Functions' ``aws-sdk`` integration reports for SageMaker's (unmodelled)
``ValidationException``; the local API answers them as ``ValidationException``.

Differences from AWS: unversioned (Marketplace) packages, model cards, ``ModelLifeCycle``,
``ModelPackageGroupPolicy`` and tags are not kept; a package's ``ModelPackageStatus`` is
``Completed`` at once (SageMaker validates the containers first); ``CreatedBy`` is not recorded.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from workflow.contracts import is_valid_name
from workflow.local.sagemaker import SDK_ERROR, SageMakerSettings, now_ms, task_failed
from workflow.local.store import (
    LocalStore,
    ObjectExistsError,
    json_bytes,
    write_json_atomic,
    write_new,
)

GROUPS = "model-package-groups"
PACKAGES = "model-packages"
APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")
APPROVAL_DESCRIPTION_LIMIT = 1024
# The members CreateModelPackage keeps as given (the rest of its request is not recorded).
_KEPT = (
    "ModelPackageDescription",
    "InferenceSpecification",
    "MetadataProperties",
    "ModelMetrics",
    "CustomerMetadataProperties",
    "Domain",
    "Task",
    "SamplePayloadUrl",
    "SourceUri",
)
_SUMMARY_KEYS = (
    "ModelPackageName",
    "ModelPackageGroupName",
    "ModelPackageVersion",
    "ModelPackageArn",
    "ModelPackageDescription",
    "CreationTime",
    "ModelPackageStatus",
    "ModelApprovalStatus",
)


def _fail(message: str) -> Exception:
    return task_failed(SDK_ERROR, message)


class ModelRegistry:
    """Model package groups and their versioned packages in the local store."""

    def __init__(self, store: LocalStore, settings: SageMakerSettings | None = None) -> None:
        self.base = store.root / "sagemaker"
        self.settings = settings or SageMakerSettings()
        self._lock = threading.Lock()

    # -- names and paths --------------------------------------------------------------------
    def group_arn(self, group: str) -> str:
        """The ARN of a model package group (SageMaker lower-cases the name in it)."""
        return self.settings.arn("model-package-group", group)

    def package_arn(self, group: str, version: int) -> str:
        """The ARN of a versioned package: ``...:model-package/<group>/<version>``."""
        return f"{self.settings.arn('model-package', group)}/{version}"

    def _group_name(self, value: Any) -> str:
        """A group's name from its name or ARN (``...:model-package-group/<name>``)."""
        name = str(value or "")
        if name.startswith("arn:") and ":model-package-group/" in name:
            name = name.rsplit("/", 1)[-1]
        if not is_valid_name(name):
            raise _fail(
                f"1 validation error detected: Value '{value}' at 'modelPackageGroupName' failed "
                "to satisfy constraint: Member must satisfy regular expression pattern: "
                "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
            )
        return self._stored_group(name)

    def _stored_group(self, name: str) -> str:
        """The name a group was created with (ARNs carry it lower-cased)."""
        folder = self.base / GROUPS
        if (folder / f"{name}.json").is_file() or not folder.is_dir():
            return name
        for candidate in folder.glob("*.json"):
            if candidate.stem.lower() == name.lower():
                return candidate.stem
        return name

    def _group_path(self, group: str) -> Path:
        return self.base / GROUPS / f"{group}.json"

    def _package_path(self, group: str, version: int) -> Path:
        return self.base / PACKAGES / group / f"{version}.json"

    def _parse_package_arn(self, value: Any) -> tuple[str, int]:
        text = str(value or "")
        head, _, tail = text.rpartition("/")
        prefix = head.rpartition("/")[0]
        if not (text.startswith("arn:") and prefix.endswith(":model-package") and tail.isdigit()):
            raise _fail(
                f"ModelPackage {text!r} is not the ARN of a versioned model package "
                "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>); "
                "unversioned model packages are not supported locally."
            )
        return self._group_name(head.rpartition("/")[2]), int(tail)

    # -- operations -------------------------------------------------------------------------
    def create_group(self, params: Mapping[str, Any], ctx: Any = None) -> dict[str, Any]:
        """CreateModelPackageGroup."""
        name = self._group_name(params.get("ModelPackageGroupName"))
        arn = self.group_arn(name)
        record = {
            "ModelPackageGroupName": name,
            "ModelPackageGroupArn": arn,
            "ModelPackageGroupDescription": params.get("ModelPackageGroupDescription"),
            "CreationTime": now_ms(),
            "ModelPackageGroupStatus": "Completed",
        }
        try:
            write_new(self._group_path(name), json_bytes(_present(record)))
        except ObjectExistsError:
            raise _fail(f"Model Package Group already exists: {arn}") from None
        return {"ModelPackageGroupArn": arn}

    def describe_group(self, params: Mapping[str, Any], ctx: Any = None) -> dict[str, Any]:
        """DescribeModelPackageGroup."""
        name = self._group_name(params.get("ModelPackageGroupName"))
        path = self._group_path(name)
        if not path.is_file():
            raise _fail(f"ModelPackageGroup {name} does not exist.")
        return dict(json.loads(path.read_text()))

    def create_package(self, params: Mapping[str, Any], ctx: Any = None) -> dict[str, Any]:
        """CreateModelPackage of a versioned package: the next version of its group."""
        if params.get("ModelPackageName") and not params.get("ModelPackageGroupName"):
            raise _fail(
                "unversioned model packages (ModelPackageName without ModelPackageGroupName) "
                "are not supported locally; pass ModelPackageGroupName."
            )
        group = self._group_name(params.get("ModelPackageGroupName"))
        if not self._group_path(group).is_file():
            raise _fail(f"Model Package Group {group} does not exist.")
        status = str(params.get("ModelApprovalStatus") or "PendingManualApproval")
        _check_status(status)
        specification = params.get("InferenceSpecification")
        if not isinstance(specification, Mapping) or not specification.get("Containers"):
            raise _fail(
                "InferenceSpecification with at least one container is required for a model "
                "package in a Model Registry group."
            )
        with self._lock:
            version = len(list((self.base / PACKAGES / group).glob("*.json"))) + 1
            while True:
                arn = self.package_arn(group, version)
                record: dict[str, Any] = {
                    "ModelPackageName": group,
                    "ModelPackageGroupName": group,
                    "ModelPackageVersion": version,
                    "ModelPackageArn": arn,
                    **{key: params.get(key) for key in _KEPT},
                    "CreationTime": now_ms(),
                    "ModelPackageStatus": "Completed",
                    "ModelPackageStatusDetails": {"ValidationStatuses": []},
                    "CertifyForMarketplace": bool(params.get("CertifyForMarketplace", False)),
                    "ModelApprovalStatus": status,
                }
                try:
                    write_new(self._package_path(group, version), json_bytes(_present(record)))
                    return {"ModelPackageArn": arn}
                except ObjectExistsError:  # another writer took this version
                    version += 1

    def describe_package(self, params: Mapping[str, Any], ctx: Any = None) -> dict[str, Any]:
        """DescribeModelPackage by the package's ARN."""
        group, version = self._parse_package_arn(params.get("ModelPackageName"))
        return self._read(group, version)

    def list_packages(self, params: Mapping[str, Any], ctx: Any = None) -> dict[str, Any]:
        """ListModelPackages: every versioned package, or a group's, newest first by default.

        ``NextToken`` is the index of the next summary (the local API pages with its own
        tokens instead, see `workflow.api.sagemaker`).
        """
        summaries = self.summaries(params)
        size = int(params.get("MaxResults") or 10)
        start = int(params.get("NextToken") or 0)
        chunk = summaries[start : start + size]
        result: dict[str, Any] = {"ModelPackageSummaryList": chunk}
        if start + size < len(summaries):
            result["NextToken"] = str(start + size)
        return result

    def summaries(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The filtered, sorted summaries ListModelPackages pages through."""
        if params.get("ModelPackageType") == "Unversioned":
            return []
        groups: list[str]
        if params.get("ModelPackageGroupName"):
            groups = [self._group_name(params["ModelPackageGroupName"])]
        else:
            folder = self.base / PACKAGES
            groups = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        status = params.get("ModelApprovalStatus")
        if status is not None:
            _check_status(str(status))
        contains = str(params.get("NameContains") or "").lower()
        records = [
            json.loads(path.read_text())
            for group in groups
            for path in (self.base / PACKAGES / group).glob("*.json")
        ]
        records = [
            r
            for r in records
            if (status is None or r.get("ModelApprovalStatus") == status)
            and contains in str(r.get("ModelPackageName", "")).lower()
        ]
        by_name = params.get("SortBy") == "Name"
        records.sort(
            key=lambda r: (
                (r["ModelPackageName"], r["ModelPackageVersion"])
                if by_name
                else (r["CreationTime"], r["ModelPackageVersion"])
            ),
            reverse=str(params.get("SortOrder") or "Descending") == "Descending",
        )
        return [{k: r[k] for k in _SUMMARY_KEYS if r.get(k) is not None} for r in records]

    def update_package(self, params: Mapping[str, Any], ctx: Any = None) -> dict[str, Any]:
        """UpdateModelPackage: the approval status and description, customer metadata."""
        group, version = self._parse_package_arn(params.get("ModelPackageArn"))
        changes: dict[str, Any] = {}
        if params.get("ModelApprovalStatus") is not None:
            changes["ModelApprovalStatus"] = _check_status(str(params["ModelApprovalStatus"]))
        if params.get("ApprovalDescription") is not None:
            description = str(params["ApprovalDescription"])
            if len(description) > APPROVAL_DESCRIPTION_LIMIT:
                raise _fail(
                    "1 validation error detected: Value at 'approvalDescription' failed to "
                    "satisfy constraint: Member must have length less than or equal to "
                    f"{APPROVAL_DESCRIPTION_LIMIT}"
                )
            changes["ApprovalDescription"] = description
        with self._lock:
            record = self._read(group, version)
            metadata = dict(record.get("CustomerMetadataProperties") or {})
            metadata.update(params.get("CustomerMetadataProperties") or {})
            for key in params.get("CustomerMetadataPropertiesToRemove") or []:
                metadata.pop(key, None)
            if metadata:
                changes["CustomerMetadataProperties"] = metadata
            record.update(changes, LastModifiedTime=now_ms())
            write_json_atomic(self._package_path(group, version), record)
        return {"ModelPackageArn": record["ModelPackageArn"]}

    def _read(self, group: str, version: int) -> dict[str, Any]:
        path = self._package_path(group, version)
        if not path.is_file():
            raise _fail(f"ModelPackage {self.package_arn(group, version)} does not exist.")
        return dict(json.loads(path.read_text()))

    # -- wiring -----------------------------------------------------------------------------
    def handlers(self) -> dict[str, Callable[[Mapping[str, Any], Any], dict[str, Any]]]:
        """The ``aws-sdk:sagemaker`` actions (as a Task resource spells them) -> handler."""
        return {
            "createModelPackageGroup": self.create_group,
            "describeModelPackageGroup": self.describe_group,
            "createModelPackage": self.create_package,
            "describeModelPackage": self.describe_package,
            "listModelPackages": self.list_packages,
            "updateModelPackage": self.update_package,
        }


def _check_status(status: str) -> str:
    if status not in APPROVAL_STATUSES:
        raise _fail(
            f"1 validation error detected: Value '{status}' at 'modelApprovalStatus' failed to "
            f"satisfy constraint: Member must satisfy enum value set: {list(APPROVAL_STATUSES)}"
        )
    return status


def _present(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if v is not None}


__all__ = ["APPROVAL_STATUSES", "GROUPS", "PACKAGES", "ModelRegistry"]
