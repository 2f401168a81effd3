"""The model registry: model package groups and their numbered versions, with approval status.

Records are ``DescribeModelPackageGroup`` / ``DescribeModelPackage``-shaped resources in the metadata
store, so any process (``sluice models ...``) sees the same registry. A version is
``<group>/<n>``, numbered from 1 in registration order; ``ModelApprovalStatus`` is one of
``PendingManualApproval``, ``Approved``, ``Rejected``.

**sluice's choice:** registering into a group that does not exist creates the group (the service
would refuse), so ``model.register(model_package_group_name=...)`` works on a fresh machine.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sluice.errors import SpecError
from sluice.session import ACCOUNT_ID

if TYPE_CHECKING:
    from sluice.session import Session

__all__ = [
    "APPROVAL_STATUSES",
    "create_model_package",
    "create_model_package_group",
    "describe_model_package",
    "describe_model_package_group",
    "list_model_package_groups",
    "list_model_packages",
    "update_approval_status",
]

GROUP_KIND = "ModelPackageGroup"
PACKAGE_KIND = "ModelPackage"
APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")


def _arn(sess: Session, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{sess.boto_region_name}:{ACCOUNT_ID}:{kind}/{name.lower()}"


def create_model_package_group(sess: Session, name: str, description: str | None = None,
                               tags: list | None = None) -> dict[str, Any]:
    record = {
        "ModelPackageGroupName": name,
        "ModelPackageGroupArn": _arn(sess, "model-package-group", name),
        "ModelPackageGroupDescription": description or "",
        "CreationTime": time.time(),
        "ModelPackageGroupStatus": "Completed",
    }
    if tags:
        record["Tags"] = tags
    sess.metadata.create_resource(GROUP_KIND, name, record)
    return record


def describe_model_package_group(sess: Session, name: str) -> dict[str, Any]:
    row = sess.metadata.get_resource(GROUP_KIND, name)
    if row is None:
        raise SpecError(f"no model package group {name!r}; `sluice models groups` lists them.")
    return row.record


def list_model_package_groups(sess: Session) -> list[dict[str, Any]]:
    return [r.record for r in sess.metadata.list_resources(GROUP_KIND)]


def _package_name(ref: str) -> str:
    """``group/3`` from a name or an ARN (``arn:...:model-package/group/3``)."""
    if ref.startswith("arn:"):
        ref = ref.split(":model-package/", 1)[-1]
    return ref


def _check_status(status: str) -> None:
    if status not in APPROVAL_STATUSES:
        raise SpecError(f"ModelApprovalStatus {status!r} is not one of {', '.join(APPROVAL_STATUSES)}.")


def _metrics_dict(model_metrics: Any) -> dict[str, Any] | None:
    if model_metrics is None:
        return None
    if hasattr(model_metrics, "_to_request_dict"):
        return model_metrics._to_request_dict()
    return dict(model_metrics)


def create_model_package(
    sess: Session, *, group: str, containers: list[dict[str, Any]], content_types: list[str],
    response_types: list[str], inference_instances: list[str], transform_instances: list[str],
    approval_status: str = "PendingManualApproval", description: str | None = None, model_metrics: Any = None,
    customer_metadata_properties: dict[str, str] | None = None, domain: str | None = None, task: str | None = None,
    framework: str | None = None, framework_version: str | None = None,
) -> dict[str, Any]:
    """Register a new version in ``group``; returns its ``DescribeModelPackage``-shaped record."""
    _check_status(approval_status)
    if sess.metadata.get_resource(GROUP_KIND, group) is None:
        create_model_package_group(sess, group)
    for attempt in range(20):  # two registrations at once: the second takes the next number
        version = 1 + max((int(r.name.rsplit("/", 1)[1]) for r in
                           sess.metadata.list_resources(PACKAGE_KIND, name_prefix=f"{group}/")), default=0)
        name = f"{group}/{version}"
        now = time.time()
        record: dict[str, Any] = {
            "ModelPackageName": group,
            "ModelPackageGroupName": group,
            "ModelPackageVersion": version,
            "ModelPackageArn": _arn(sess, "model-package", name),
            "ModelPackageDescription": description or "",
            "CreationTime": now,
            "LastModifiedTime": now,
            "InferenceSpecification": {
                "Containers": containers,
                "SupportedContentTypes": content_types,
                "SupportedResponseMIMETypes": response_types,
                "SupportedRealtimeInferenceInstanceTypes": inference_instances,
                "SupportedTransformInstanceTypes": transform_instances,
            },
            "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": approval_status,
            "CertifyForMarketplace": False,
        }
        metrics = _metrics_dict(model_metrics)
        if metrics:
            record["ModelMetrics"] = metrics
        if customer_metadata_properties:
            record["CustomerMetadataProperties"] = customer_metadata_properties
        for key, value in (("Domain", domain), ("Task", task)):
            if value:
                record[key] = value
        if framework:
            for c in containers:
                c.setdefault("Framework", framework.upper())
                if framework_version:
                    c.setdefault("FrameworkVersion", framework_version)
        try:
            sess.metadata.create_resource(PACKAGE_KIND, name, record)
        except SpecError:
            if attempt == 19:
                raise
            continue
        return record
    raise SpecError(f"could not allocate a version in model package group {group!r}")  # pragma: no cover


def describe_model_package(sess: Session, ref: str) -> dict[str, Any]:
    """A version by ``group/n`` or by its ARN."""
    row = sess.metadata.get_resource(PACKAGE_KIND, _package_name(ref))
    if row is None:
        raise SpecError(f"no model package {ref!r}; `sluice models packages GROUP` lists a group's versions.")
    return row.record


def list_model_packages(sess: Session, group: str, approval_status: str | None = None) -> list[dict[str, Any]]:
    """A group's versions, oldest first (optionally only those with ``approval_status``)."""
    rows = sorted(sess.metadata.list_resources(PACKAGE_KIND, name_prefix=f"{group}/"),
                  key=lambda r: r.record["ModelPackageVersion"])
    return [r.record for r in rows if approval_status is None or r.record["ModelApprovalStatus"] == approval_status]


def update_approval_status(sess: Session, ref: str, status: str, description: str | None = None) -> dict[str, Any]:
    _check_status(status)
    record = describe_model_package(sess, ref)
    record["ModelApprovalStatus"] = status
    record["LastModifiedTime"] = time.time()
    if description is not None:
        record["ApprovalDescription"] = description
    sess.metadata.update_resource(PACKAGE_KIND, _package_name(ref), record)
    return record
