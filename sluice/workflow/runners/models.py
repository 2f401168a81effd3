"""Runners for the steps that record a model: ``Model`` (CreateModel) and ``RegisterModel`` (CreateModelPackage).

Neither starts a job. A ``Model`` step records a ``DescribeModel``-shaped resource in the metadata store
under the attempt's unique name, exactly where ``Model.create()`` records one, so a later Transform step,
``sluice models``, or an endpoint finds it. A ``RegisterModel`` step adds a version to a model package group
through :mod:`sluice.model_registry` (the group is created when missing, as ``model.register()`` does).

Both record through the functions the facade uses (:func:`sluice.model.record_model` and
:func:`sluice.model_registry.create_model_package`), which check the request against botocore's
``CreateModel`` / ``CreateModelPackage`` shapes first, so a malformed request fails the step with the field
to fix and records nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from sluice.errors import NoSuchKeyError, SpecError, StorageError
from sluice.workflow.runners.base import DEFAULT_ROLE_ARN, StepContext, StepFailed, StepOutcome, stringify_map

__all__ = ["run_create_model", "run_register_model"]


def _client_error(exc: Exception) -> StepFailed:
    """The request's own fault: fails the step, never retried (contract 5.9)."""
    text = str(exc)
    return StepFailed(text if text.startswith("ClientError") else f"ClientError: {text}")


def _validate(operation: str, request: Mapping[str, Any]) -> None:
    from sluice.jobs.schema import validate_request

    try:
        validate_request(operation, request)
    except SpecError as exc:
        raise _client_error(exc) from None


def _containers(request: Mapping[str, Any]) -> list[dict[str, Any]]:
    primary = request.get("PrimaryContainer")
    return [primary] if isinstance(primary, dict) else [c for c in request.get("Containers") or []
                                                         if isinstance(c, dict)]


def _from_package(ctx: StepContext, container: dict[str, Any]) -> None:
    """A container naming a registered version (``ModelPackageName``) gets that version's image, model data and
    environment, which is what serving and batch transform run."""
    from sluice.serving.registry import describe_model_package

    try:
        package = describe_model_package(ctx.session, str(container["ModelPackageName"]))
    except SpecError as exc:
        raise _client_error(exc) from None
    source = package["InferenceSpecification"]["Containers"][0]
    for key in ("Image", "ModelDataUrl", "Environment"):
        if key in source:
            container.setdefault(key, copy.deepcopy(source[key]))


def _check_container(ctx: StepContext, container: Mapping[str, Any]) -> None:
    """The image must map to an environment here, and ``ModelDataUrl`` must exist, as CreateModel checks
    ("Could not find model data at ..."), so a wrong URI fails here, not in a later transform."""
    from sluice.runtime.environments import resolve_image
    from sluice.storage import S3Uri

    try:
        resolve_image(container.get("Image"), ctx.config).check()
    except SpecError as exc:
        raise _client_error(exc) from None
    url = container.get("ModelDataUrl")
    if not isinstance(url, str) or not url.startswith("s3://"):
        return
    try:
        uri = S3Uri.parse(url)
        ctx.session.store.stat(uri.bucket, uri.key)
    except NoSuchKeyError:
        raise StepFailed(f"ClientError: Could not find model data at {url}. Check the ModelDataUrl (for a "
                         "training step: Steps.<name>.ModelArtifacts.S3ModelArtifacts).") from None
    except SpecError as exc:
        raise _client_error(exc) from None
    except StorageError as exc:
        raise StepFailed(f"ServiceUnavailable: {exc}", failure_type="Step.SERVICE_FAULT") from None


def run_create_model(ctx: StepContext, request: dict[str, Any]) -> StepOutcome:
    """A ``Model`` step (``ModelStep(step_args=model.create(...))``): record the model as ``ctx.job_name``.

    The arguments are a CreateModel request without ``ModelName`` (contract 5.1); the service names the model
    per execution, so each run of the pipeline creates its own. The properties are the DescribeModel record
    (``ModelName``, ``ModelArn``, ``PrimaryContainer``, ...).
    """
    from sluice.serving.registry import record_model

    request = copy.deepcopy(request)
    name = ctx.job_name
    request["ModelName"] = name
    request.setdefault("ExecutionRoleArn", DEFAULT_ROLE_ARN)
    containers = _containers(request)
    for container in containers:
        stringify_map(container, "Environment")
    _validate("CreateModel", request)  # before the containers' image and data are looked at
    if not containers:
        raise StepFailed(f"ClientError: Model step {ctx.spec.name!r} has no PrimaryContainer (or Containers); "
                         "create the model from a Model with an image_uri.")
    for container in containers:
        if container.get("ModelPackageName"):
            _from_package(ctx, container)
        _check_container(ctx, container)
    try:
        record = record_model(ctx.session, request)
    except SpecError as exc:
        raise _client_error(exc) from None
    arn = record["ModelArn"]
    ctx.record_metadata({"Model": {"Arn": arn}})
    return StepOutcome(properties=record, metadata={"Model": {"Arn": arn}})


def run_register_model(ctx: StepContext, request: dict[str, Any]) -> StepOutcome:
    """A ``RegisterModel`` step (``ModelStep(step_args=model.register(...))``): a new model package version.

    The arguments are a CreateModelPackage request; the version goes into ``ModelPackageGroupName`` (created
    when missing). The properties are the DescribeModelPackage record (``ModelPackageArn``,
    ``ModelApprovalStatus``, ``ModelPackageVersion``, ...).
    """
    from sluice.serving.registry import create_model_package

    request = copy.deepcopy(request)
    spec = request.get("InferenceSpecification")
    containers = spec.get("Containers") if isinstance(spec, dict) else None
    for container in containers if isinstance(containers, list) else []:
        stringify_map(container, "Environment")
    try:
        record = create_model_package(ctx.session, request)
    except SpecError as exc:
        raise _client_error(exc) from None
    arn = record["ModelPackageArn"]
    ctx.record_metadata({"RegisterModel": {"Arn": arn}})
    return StepOutcome(properties=record, metadata={"RegisterModel": {"Arn": arn}})
