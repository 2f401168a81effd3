"""``sluice.workflow.model_step``: ``ModelStep``, which creates or registers a model (SDK ``model_step.py``).

``ModelStep(name="M", step_args=model.create(...))`` becomes a ``Model`` step named ``M-CreateModel``;
``step_args=model.register(...)`` a ``RegisterModel`` step named ``M-RegisterModel``, exactly as the SDK
emits them. Readers refer to the generated step: ``Steps.M-CreateModel.ModelName`` (``M.properties``
already points there).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from sluice.errors import PipelineError
from sluice.workflow.entities import RequestType
from sluice.workflow.graph import StepType
from sluice.workflow.pipeline_context import PipelineSession, _ModelStepArguments
from sluice.workflow.properties import Properties
from sluice.workflow.retry import RetryPolicy, SageMakerJobStepRetryPolicy
from sluice.workflow.step_collections import StepCollection
from sluice.workflow.steps import ConfigurableRetryStep, CreateModelStep

__all__ = ["ModelStep"]

log = logging.getLogger("sluice")

_CREATE_MODEL_NAME_BASE = "CreateModel"
_REGISTER_MODEL_NAME_BASE = "RegisterModel"


class _RegisterModelStep(ConfigurableRetryStep):
    """A ``RegisterModel`` step: the ``CreateModelPackage`` request, minus what the service refuses there."""

    def __init__(self, name: str, step_args: _ModelStepArguments, display_name: str | None = None,
                 description: str | None = None, depends_on: list[Any] | None = None,
                 retry_policies: list[RetryPolicy] | None = None) -> None:
        super().__init__(name, StepType.REGISTER_MODEL, display_name, description, depends_on, retry_policies)
        assert step_args.create_model_package_request is not None
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
    """Create (``model.create()``) or register (``model.register()``) a model, as the SDK's ModelStep."""

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
            create_policies = retry_policies.get("create_model_retry_policies")
            register_policies = retry_policies.get("register_model_retry_policies")
        else:
            create_policies = register_policies = retry_policies
        for policy in [*(create_policies or []), *(register_policies or [])]:
            if isinstance(policy, SageMakerJobStepRetryPolicy):
                raise PipelineError("SageMakerJobStepRetryPolicy is not allowed for a create/register model step; "
                                    "use StepRetryPolicy instead.")
        if step_args.create_model_package_request is not None:
            step: ConfigurableRetryStep = _RegisterModelStep(
                f"{name}-{_REGISTER_MODEL_NAME_BASE}", step_args, display_name, description, depends_on,
                register_policies)
        else:
            step = CreateModelStep(f"{name}-{_CREATE_MODEL_NAME_BASE}", step_args=step_args, depends_on=depends_on,
                                   retry_policies=create_policies, display_name=display_name,
                                   description=description)
        self.steps = [step]
        if repack_model_step_settings:
            log.warning("ModelStep %r: repack_model_step_settings given, but no repack step is built; ignoring them.",
                        name)
