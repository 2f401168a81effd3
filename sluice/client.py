"""``Session.sagemaker_client``: the boto3 SageMaker client calls that SageMaker examples make, answered locally.

Argument names are boto3's (``ModelPackageArn=``), so code written against boto3 runs as it is.

Examples reach past the SDK for a few things, most of all the model registry
(``sm_client.update_model_package(ModelPackageArn=..., ModelApprovalStatus="Approved")``). This client
takes boto3's method names, keyword arguments and response shapes, and reads and writes sluice's
metadata store. A method it does not have raises ``AttributeError`` naming the ones it has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluice import model_registry as registry
from sluice.errors import SpecError

if TYPE_CHECKING:
    from sluice.session import Session

__all__ = ["LocalSageMakerClient"]


class LocalSageMakerClient:
    """A subset of ``boto3.client("sagemaker")`` over sluice's metadata store."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def __getattr__(self, name: str) -> Any:
        have = ", ".join(sorted(n for n in dir(type(self)) if not n.startswith("_")))
        raise AttributeError(f"the local SageMaker client has no {name!r}; it answers: {have}. Use the SDK-shaped "
                             "sluice classes for the rest.")

    # ---- jobs ------------------------------------------------------------------------------------
    def describe_processing_job(self, ProcessingJobName: str) -> dict[str, Any]:
        return self._session.describe_processing_job(ProcessingJobName)

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        return self._session.describe_training_job(TrainingJobName)

    def stop_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        self._session.stop_training_job(TrainingJobName)
        return {}

    def stop_processing_job(self, ProcessingJobName: str) -> dict[str, Any]:
        self._session.stop_processing_job(ProcessingJobName)
        return {}

    # ---- models ----------------------------------------------------------------------------------
    def describe_model(self, ModelName: str) -> dict[str, Any]:
        row = self._session.metadata.get_resource("Model", ModelName)
        if row is None:
            raise SpecError(f"Could not find model {ModelName!r}.")
        return row.record

    def delete_model(self, ModelName: str) -> dict[str, Any]:
        if not self._session.metadata.delete_resource("Model", ModelName):
            raise SpecError(f"Could not find model {ModelName!r}.")
        return {}

    # ---- the model registry -------------------------------------------------------------------------
    def create_model_package_group(self, ModelPackageGroupName: str,
                                   ModelPackageGroupDescription: str | None = None,
                                   Tags: list | None = None) -> dict[str, Any]:
        rec = registry.create_model_package_group(self._session, ModelPackageGroupName, ModelPackageGroupDescription,
                                                  Tags)
        return {"ModelPackageGroupArn": rec["ModelPackageGroupArn"]}

    def describe_model_package_group(self, ModelPackageGroupName: str) -> dict[str, Any]:
        return registry.describe_model_package_group(self._session, ModelPackageGroupName)

    def list_model_package_groups(self, **kwargs: Any) -> dict[str, Any]:
        return {"ModelPackageGroupSummaryList": registry.list_model_package_groups(self._session)}

    def describe_model_package(self, ModelPackageName: str) -> dict[str, Any]:
        return registry.describe_model_package(self._session, ModelPackageName)

    def list_model_packages(self, ModelPackageGroupName: str, ModelApprovalStatus: str | None = None,
                            SortBy: str = "CreationTime", SortOrder: str = "Ascending",
                            MaxResults: int | None = None, **kwargs: Any) -> dict[str, Any]:
        packages = registry.list_model_packages(self._session, ModelPackageGroupName, ModelApprovalStatus)
        packages.sort(key=lambda p: p.get(SortBy, p["CreationTime"]), reverse=SortOrder == "Descending")
        keys = ("ModelPackageName", "ModelPackageGroupName", "ModelPackageVersion", "ModelPackageArn",
                "ModelPackageDescription", "CreationTime", "ModelPackageStatus", "ModelApprovalStatus")
        summaries = [{k: p[k] for k in keys if k in p} for p in packages]
        return {"ModelPackageSummaryList": summaries[:MaxResults] if MaxResults else summaries}

    def update_model_package(self, ModelPackageArn: str, ModelApprovalStatus: str | None = None,
                             ApprovalDescription: str | None = None, **kwargs: Any) -> dict[str, Any]:
        record = registry.describe_model_package(self._session, ModelPackageArn)
        if ModelApprovalStatus is not None:
            record = registry.update_approval_status(self._session, ModelPackageArn, ModelApprovalStatus,
                                                     ApprovalDescription)
        return {"ModelPackageArn": record["ModelPackageArn"]}
