"""Model records and the model registry: models, model package groups and their numbered versions.

``record_model`` writes the ``DescribeModel``-shaped record that ``Model.create()`` and a pipeline's Model step
both make. The registry's records are ``DescribeModelPackageGroup`` / ``DescribeModelPackage``-shaped.
It lives in the serving layer so that the pipeline executor (a lower layer than the SDK-shaped facade) records
models and packages through the same code as ``Model.create()``/``register()``; ``sluice.model_registry``
re-exports it.

Records are ``DescribeModelPackageGroup`` / ``DescribeModelPackage``-shaped resources in the metadata
store, so any process (``sluice models ...``) sees the same registry. A version is
``<group>/<n>``, numbered from 1 in registration order; ``ModelApprovalStatus`` is one of
``PendingManualApproval``, ``Approved``, ``Rejected``.

**sluice's choice:** registering into a group that does not exist creates the group (the service
would refuse), so ``model.register(model_package_group_name=...)`` works on a fresh machine.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from sluice.config import ACCOUNT_ID
from sluice.errors import SpecError

if TYPE_CHECKING:
    from sluice.session import Session

__all__ = [
    "APPROVAL_STATUSES",
    "MODEL_KIND",
    "create_model_package",
    "create_model_package_group",
    "describe_model_package",
    "describe_model_package_group",
    "list_model_package_groups",
    "list_model_packages",
    "record_model",
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


def _package_name(sess: Session, ref: str) -> str:
    """``group/3`` from a name or an ARN (``arn:...:model-package/group/3``).

    ARNs spell the group in lower case (as the service's do), so an ARN finds its group case-insensitively.
    """
    if not ref.startswith("arn:"):
        return ref
    name = ref.split(":model-package/", 1)[-1]
    group, _, version = name.rpartition("/")
    if sess.metadata.get_resource(GROUP_KIND, group) is None:
        group = next((r.name for r in sess.metadata.list_resources(GROUP_KIND, limit=100_000)
                      if r.name.lower() == group.lower()), group)
    return f"{group}/{version}"


def _check_status(status: str) -> None:
    if status not in APPROVAL_STATUSES:
        raise SpecError(f"ModelApprovalStatus {status!r} is not one of {', '.join(APPROVAL_STATUSES)}.")


def _group_name(ref: str) -> str:
    """A group named by its ARN (``arn:...:model-package-group/name``) or by name."""
    return ref.split(":model-package-group/", 1)[-1] if ref.startswith("arn:") else ref


@cache
def _described_fields() -> frozenset[str]:
    """The fields ``DescribeModelPackage`` answers with (botocore's output shape): a request field among them is
    given back as it was sent."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.operation_model("DescribeModelPackage").output_shape.members)


_SET_HERE = frozenset({"ModelPackageName", "ModelPackageGroupName", "ModelPackageDescription", "InferenceSpecification",
                       "ModelApprovalStatus", "CertifyForMarketplace"})
"""Fields of the record that :func:`create_model_package` fills itself (numbered, defaulted)."""


def create_model_package(sess: Session, request: Mapping[str, Any]) -> dict[str, Any]:
    """Register a ``CreateModelPackage`` request as a new version of its group; return the version's
    ``DescribeModelPackage``-shaped record.

    The request is checked against botocore's ``CreateModelPackage`` shape first, so a bad field is refused
    (naming it) before anything is recorded. The version goes into ``ModelPackageGroupName`` (a name or an ARN;
    ``ModelPackageName`` stands in for it when it is missing), created when missing; versions are numbered from 1.
    Every request field DescribeModelPackage has (``ModelMetrics``, ``MetadataProperties``,
    ``DriftCheckBaselines``, ``ValidationSpecification``, ``SamplePayloadUrl``, ``CustomerMetadataProperties``,
    ``Domain``, ``Task``, ...) is recorded as sent. Both ``Model.register()`` and a pipeline's RegisterModel
    step register through here.
    """
    from sluice.jobs.schema import validate_request

    validate_request("CreateModelPackage", request)
    ref = request.get("ModelPackageGroupName") or request.get("ModelPackageName")
    spec = request.get("InferenceSpecification")
    if not ref or not isinstance(spec, Mapping) or not spec.get("Containers"):
        raise SpecError("CreateModelPackage needs ModelPackageGroupName and an InferenceSpecification with "
                        "Containers: register with model.register(model_package_group_name=..., "
                        "content_types=..., response_types=...).")
    group = _group_name(str(ref))
    approval_status = str(request.get("ModelApprovalStatus") or "PendingManualApproval")
    _check_status(approval_status)
    if sess.metadata.get_resource(GROUP_KIND, group) is None:
        try:
            create_model_package_group(sess, group)
        except SpecError:  # two registrations at once (parallel pipeline steps): the other one created it
            if sess.metadata.get_resource(GROUP_KIND, group) is None:
                raise
    inference: dict[str, Any] = {key: [] for key in ("SupportedContentTypes", "SupportedResponseMIMETypes",
                                                     "SupportedRealtimeInferenceInstanceTypes",
                                                     "SupportedTransformInstanceTypes")}
    inference.update(copy.deepcopy(dict(spec)))
    described = _described_fields()
    given = {key: copy.deepcopy(value) for key, value in request.items() if key in described and key not in _SET_HERE}
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
            "ModelPackageDescription": request.get("ModelPackageDescription") or "",
            "CreationTime": now,
            "LastModifiedTime": now,
            "InferenceSpecification": inference,
            "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": approval_status,
            "CertifyForMarketplace": bool(request.get("CertifyForMarketplace", False)),
            **given,
        }
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
    row = sess.metadata.get_resource(PACKAGE_KIND, _package_name(sess, ref))
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
    sess.metadata.update_resource(PACKAGE_KIND, _package_name(sess, ref), record)
    return record


MODEL_KIND = "Model"
_DESCRIBED_FIELDS = ("PrimaryContainer", "Containers", "InferenceExecutionConfig", "ExecutionRoleArn", "VpcConfig")
"""CreateModel request fields that DescribeModel gives back as they were sent."""


def record_model(sess: Session, request: Mapping[str, Any]) -> dict[str, Any]:
    """Record a ``CreateModel`` request as the ``DescribeModel``-shaped resource that batch transform, endpoints,
    ``sluice models`` and ``describe_model`` read; return that record.

    ``Model.create()`` and a pipeline's Model step both record through here, so a model looks the same however
    it was made. The request is checked against botocore's ``CreateModel`` shape first (a bad one records
    nothing); a name already taken is refused (``ResourceInUse``). ``Tags`` are accepted but, as in
    DescribeModel, not part of the record.
    """
    from sluice.jobs.schema import validate_request

    validate_request("CreateModel", request)
    name = str(request["ModelName"])
    record: dict[str, Any] = {
        "ModelName": name,
        "ModelArn": f"arn:aws:sagemaker:{sess.boto_region_name}:{ACCOUNT_ID}:model/{name.lower()}",
    }
    record.update({key: copy.deepcopy(request[key]) for key in _DESCRIBED_FIELDS if key in request})
    record["EnableNetworkIsolation"] = bool(request.get("EnableNetworkIsolation", False))
    record["CreationTime"] = time.time()
    sess.metadata.create_resource(MODEL_KIND, name, record)
    return record
