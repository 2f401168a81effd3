"""``sluice.workflow.model_step``: ``ModelStep``, which creates or registers a model (SDK ``model_step.py``).

``ModelStep(name="M", step_args=model.create(...))`` becomes a ``Model`` step named ``M-CreateModel``;
``step_args=model.register(...)`` a ``RegisterModel`` step named ``M-RegisterModel``, exactly as the SDK
emits them. Readers refer to the generated step: ``Steps.M-CreateModel.ModelName`` (``M.properties``
already points there).

A model with ``entry_point`` whose ``model_data`` is known only when the pipeline runs (typically
``step_train.properties.ModelArtifacts.S3ModelArtifacts``) needs its code repacked into that archive first.
As in the SDK, the collection then starts with ``M-RepackModel-<model name or 0>``, a Training step
(:class:`_RepackModelStep`) that runs sluice's repack script (:mod:`sluice.workflow.repack`) in the
scikit-learn image with the archive as its ``training`` channel, and the model's ``ModelDataUrl`` reads
``Steps.M-RepackModel-0.ModelArtifacts.S3ModelArtifacts``; ``SAGEMAKER_PROGRAM`` and
``SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code`` point the model server at the code.
"""

from __future__ import annotations

import copy
import logging
import os
from typing import Any

from sluice.errors import PipelineError
from sluice.workflow.entities import RequestType
from sluice.workflow.graph import StepType
from sluice.workflow.pipeline_context import (
    PipelineSession,
    _ModelStepArguments,
    pipeline_step_location,
    stage_pipeline_code,
)
from sluice.workflow.properties import Properties
from sluice.workflow.repack import FRAMEWORK_VERSION, INSTANCE_TYPE, REPACK_SCRIPT_LAUNCHER, code_members, repack_bundle
from sluice.workflow.retry import RetryPolicy, SageMakerJobStepRetryPolicy
from sluice.workflow.step_collections import StepCollection
from sluice.workflow.steps import ConfigurableRetryStep, CreateModelStep, TrainingStep

__all__ = ["ModelStep"]

log = logging.getLogger("sluice")

_CREATE_MODEL_NAME_BASE = "CreateModel"
_REGISTER_MODEL_NAME_BASE = "RegisterModel"
_REPACK_MODEL_NAME_BASE = "RepackModel"
_RETRY_KEYS = ("create_model_retry_policies", "register_model_retry_policies", "repack_model_retry_policies")
#: Estimator arguments the repack step sets from the model or for itself.
_REPACK_OWN_SETTINGS = ("entry_point", "source_dir", "dependencies", "hyperparameters", "framework_version",
                        "sagemaker_session", "role", "output_path", "code_location")


class _RepackModelStep(TrainingStep):
    """The SDK's ``_RepackModelStep``: a training job that adds a model's inference code to its archive.

    Its request is the one an ``SKLearn`` estimator (``framework_version`` 0.23-1, ``ml.m5.large``, program
    ``_repack_script_launcher.sh``) makes for ``fit(TrainingInput(model_data))``, with the SDK's
    hyperparameters ``inference_script``, ``model_archive``, ``dependencies`` and ``source_dir``. What differs
    is inside the code bundle: sluice's own repack script, and the model's code under ``model/code/``
    (:func:`sluice.workflow.repack.repack_bundle`). The bundle is staged content-addressed and the output goes
    to ``<code_location or s3://<bucket>[/<prefix>]>/<pipeline>/<step>``, so rebuilding the pipeline gives the
    same arguments.
    """

    def __init__(self, name: str, sagemaker_session: Any, role: str | None, model_data: Any, entry_point: str,
                 display_name: str | None = None, description: str | None = None, source_dir: str | None = None,
                 dependencies: list[str] | None = None, depends_on: list[Any] | None = None,
                 retry_policies: list[RetryPolicy] | None = None, subnets: list[str] | None = None,
                 security_group_ids: list[str] | None = None, code_location: str | None = None,
                 **kwargs: Any) -> None:
        from sluice.inputs import TrainingInput
        from sluice.sklearn.estimator import SKLearn

        self._entry_point, self._source_dir = entry_point, source_dir
        self._dependencies = list(dependencies or [])
        self._code_location = code_location.rstrip("/") if code_location else None
        code_members(entry_point, source_dir, self._dependencies)  # a missing file is refused now, not at definition()
        fixed = sorted(set(kwargs) & set(_REPACK_OWN_SETTINGS))
        if fixed:
            raise PipelineError(f"repack step {name!r}: {', '.join(fixed)} cannot be set for the repack job (it is "
                                "the model's, or the repack job's own); leave them out of repack_model_step_settings.")
        settings = {"instance_type": INSTANCE_TYPE, "instance_count": 1, **kwargs}
        repacker = SKLearn(
            entry_point=REPACK_SCRIPT_LAUNCHER, framework_version=FRAMEWORK_VERSION,
            sagemaker_session=sagemaker_session, role=role, subnets=subnets, security_group_ids=security_group_ids,
            hyperparameters={"inference_script": os.path.basename(entry_point), "model_archive": model_data,
                             "dependencies": " ".join(self._dependencies) or None, "source_dir": source_dir},
            **settings)
        super().__init__(name, display_name=display_name, description=description, depends_on=depends_on,
                         retry_policies=retry_policies, estimator=repacker, inputs=TrainingInput(model_data))

    @property
    def arguments(self) -> RequestType:
        """The ``CreateTrainingJob`` request, made while the pipeline compiles: the bundle is staged first."""
        session = self.estimator.sagemaker_session
        bundle = repack_bundle(self._entry_point, self._source_dir, self._dependencies)
        staged = stage_pipeline_code(session, bundle, "sourcedir.tar.gz", base=self._code_location)
        output = pipeline_step_location(session, base=self._code_location)
        if staged is None or output is None:
            raise PipelineError(f"repack step {self.name!r}: its arguments are made when Pipeline.definition() "
                                "compiles it (they name the pipeline); build the pipeline and call definition().")
        self.estimator.source_dir, self.estimator.output_path = staged, output
        return super().arguments


class _RegisterModelStep(ConfigurableRetryStep):
    """A ``RegisterModel`` step: the ``CreateModelPackage`` request, minus what the service refuses there."""

    def __init__(self, name: str, step_args: _ModelStepArguments, display_name: str | None = None,
                 description: str | None = None, depends_on: list[Any] | None = None,
                 retry_policies: list[RetryPolicy] | None = None) -> None:
        super().__init__(name, StepType.REGISTER_MODEL, display_name, description, depends_on, retry_policies)
        assert step_args.create_model_package_request is not None
        if step_args.need_runtime_repack:
            raise PipelineError(
                f"{name}: the model has entry_point and a model_data known only when the pipeline runs, so it needs "
                "a repack step, which only ModelStep adds. Register it with ModelStep(name, "
                "step_args=model.register(...)).")
        self.step_args = step_args
        self._properties = Properties.for_step_type(name, StepType.REGISTER_MODEL.value)

    @property
    def arguments(self) -> RequestType:
        request = copy.deepcopy(self.step_args.create_model_package_request)
        assert request is not None
        request.pop("CertifyForMarketplace", None)  # "not available in the workflow service" (SDK)
        request.pop("Description", None)
        return request

    @property
    def properties(self) -> Properties:
        return self._properties


class ModelStep(StepCollection):
    """Create (``model.create()``) or register (``model.register()``) a model, as the SDK's ModelStep.

    ``retry_policies`` is a list for every step of the collection, or a dict with the keys
    ``create_model_retry_policies``, ``register_model_retry_policies`` and ``repack_model_retry_policies``.
    ``repack_model_step_settings`` are keyword arguments for the repack step's estimator (``instance_type``,
    ``volume_size``, ``max_run``...).
    """

    def __init__(self, name: str, step_args: _ModelStepArguments, depends_on: list[Any] | None = None,
                 retry_policies: list[RetryPolicy] | dict[str, list[RetryPolicy]] | None = None,
                 display_name: str | None = None, description: str | None = None,
                 repack_model_step_settings: dict[str, Any] | None = None) -> None:
        if not isinstance(step_args, _ModelStepArguments):
            raise PipelineError("The step_args of ModelStep must be obtained from model.create() or model.register() "
                                "under a PipelineSession.")
        if (step_args.create_model_request is None) == (step_args.create_model_package_request is None):
            raise PipelineError("Invalid step_args: either model.create() or model.register() arguments, not both.")
        if not isinstance(getattr(step_args.model, "sagemaker_session", None), PipelineSession):
            raise PipelineError("To build a ModelStep, the model's sagemaker_session must be a PipelineSession.")
        super().__init__(name=name, depends_on=depends_on)
        self.step_args = step_args
        self.retry_policies = retry_policies
        self.display_name, self.description = display_name, description
        if isinstance(retry_policies, dict):
            unknown = sorted(set(retry_policies) - set(_RETRY_KEYS))
            if unknown:
                raise PipelineError(f"ModelStep {name!r}: retry_policies has unknown keys {unknown}; use "
                                    f"{', '.join(_RETRY_KEYS)}.")
            create_policies, register_policies, repack_policies = (retry_policies.get(k) for k in _RETRY_KEYS)
        else:
            create_policies = register_policies = repack_policies = retry_policies
        for policy in [*(create_policies or []), *(register_policies or [])]:
            if isinstance(policy, SageMakerJobStepRetryPolicy):
                raise PipelineError("SageMakerJobStepRetryPolicy is not allowed for a create/register model step; "
                                    "use StepRetryPolicy instead.")
        args = copy.copy(step_args)  # the user's step_args stay as model.create()/register() made them
        args.create_model_request = copy.deepcopy(step_args.create_model_request)
        args.create_model_package_request = copy.deepcopy(step_args.create_model_package_request)
        args.need_runtime_repack = set()
        self.steps = []
        if step_args.need_runtime_repack:
            self._append_repack_step(args, repack_policies, repack_model_step_settings or {})
        elif repack_model_step_settings:
            log.warning("ModelStep %r: repack_model_step_settings given, but the model needs no repack step (no "
                        "entry_point, or a model_data known now); ignoring them.", name)
        step_depends_on = None if self.steps else depends_on  # the repack step waits for those instead
        if args.create_model_package_request is not None:
            step: ConfigurableRetryStep = _RegisterModelStep(
                f"{name}-{_REGISTER_MODEL_NAME_BASE}", args, display_name, description, step_depends_on,
                register_policies)
        else:
            step = CreateModelStep(f"{name}-{_CREATE_MODEL_NAME_BASE}", step_args=args, depends_on=step_depends_on,
                                   retry_policies=create_policies, display_name=display_name,
                                   description=description)
        self.steps.append(step)

    def _append_repack_step(self, args: _ModelStepArguments, retry_policies: list[RetryPolicy] | None,
                            settings: dict[str, Any]) -> None:
        """Add the model's repack step and point its container's ``ModelDataUrl`` at the repacked archive."""
        model = self.step_args.model
        vpc = getattr(model, "vpc_config", None) or {}
        repack = _RepackModelStep(
            name=f"{self.name}-{_REPACK_MODEL_NAME_BASE}-{getattr(model, 'name', None) or 0}",
            sagemaker_session=model.sagemaker_session, role=model.role, model_data=model.model_data,
            entry_point=model.entry_point, source_dir=model.source_dir, dependencies=model.dependencies,
            subnets=vpc.get("Subnets"), security_group_ids=vpc.get("SecurityGroupIds"),
            description="Used to repack a model with customer scripts for a register/create model step",
            depends_on=self.depends_on, retry_policies=retry_policies,
            code_location=self.step_args.runtime_repack_output_prefix, **settings)
        self.steps.append(repack)
        if args.create_model_request is not None:
            container = args.create_model_request["PrimaryContainer"]
        else:
            assert args.create_model_package_request is not None
            container = args.create_model_package_request["InferenceSpecification"]["Containers"][0]
        container["ModelDataUrl"] = repack.properties.ModelArtifacts.S3ModelArtifacts
