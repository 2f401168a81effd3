"""``sluice.workflow.step_collections``: several steps made by one call (``ModelStep`` is one).

A collection is flattened into its steps in the definition; ``depends_on=[collection]`` (or its name)
means its last step, and its ``properties`` are its last step's (contract 5.10).

``RegisterModel`` is the SDK's older way to register a model from a pipeline (``ModelStep(step_args=
model.register(...))`` replaced it); it emits the same ``<name>-RegisterModel`` step.
"""

from __future__ import annotations

import warnings
from typing import Any

from sluice.errors import PipelineError
from sluice.workflow.retry import RetryPolicy
from sluice.workflow.steps import Step

__all__ = ["RegisterModel", "StepCollection"]


class StepCollection:
    """A named, ordered list of steps."""

    def __init__(self, name: str, steps: list[Step] | None = None, depends_on: list[Any] | None = None) -> None:
        self.name = name
        self.steps: list[Step] = list(steps or [])
        self.depends_on = list(depends_on) if depends_on is not None else None

    @property
    def properties(self) -> Any:
        """The last step's properties (what a ModelStep's readers mean)."""
        return self.steps[-1].properties

    def request_dicts(self) -> list[dict[str, Any]]:
        return [s.to_request() for s in self.steps]  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, steps={[s.name for s in self.steps]})"


class RegisterModel(StepCollection):
    """Register a model version from a pipeline (SDK ``sagemaker.workflow.step_collections.RegisterModel``).

    Give ``model`` (a :class:`sluice.model.Model`), or ``estimator`` and ``model_data`` (typically
    ``step_train.properties.ModelArtifacts.S3ModelArtifacts``): the model is then served in ``image_uri``, else
    the estimator's image (a framework estimator's inference image). The collection holds one
    ``<name>-RegisterModel`` step whose arguments are the ``CreateModelPackage`` request ``model.register(...)``
    makes. As in the SDK, it warns that ``ModelStep`` replaces it.

    This older collection builds no repack step: ``entry_point`` (or a model with ``entry_point`` whose
    ``model_data`` is known only at execution) is refused, naming ``ModelStep(step_args=model.register(...))``,
    which adds the repack step as the SDK does.
    """

    _REGISTER_MODEL_NAME_BASE = "RegisterModel"

    def __init__(
        self, name: str, content_types: Any, response_types: Any, inference_instances: Any = None,
        transform_instances: Any = None, estimator: Any = None, model_data: Any = None,
        depends_on: list[Any] | None = None, repack_model_step_retry_policies: list[RetryPolicy] | None = None,
        register_model_step_retry_policies: list[RetryPolicy] | None = None, model_package_group_name: Any = None,
        model_metrics: Any = None, approval_status: Any = None, image_uri: Any = None,
        compile_model_family: str | None = None, display_name: str | None = None, description: str | None = None,
        tags: list[dict[str, str]] | None = None, model: Any = None, drift_check_baselines: Any = None,
        customer_metadata_properties: dict[str, Any] | None = None, domain: Any = None,
        sample_payload_url: Any = None, task: Any = None, framework: str | None = None,
        framework_version: str | None = None, nearest_model_name: Any = None, data_input_configuration: Any = None,
        **kwargs: Any,
    ) -> None:
        from sluice.workflow.model_step import _RegisterModelStep
        from sluice.workflow.pipeline_context import PipelineSession, _ModelStepArguments

        super().__init__(name=name, depends_on=depends_on)
        if "entry_point" in kwargs:
            raise PipelineError(f"RegisterModel {name!r}: entry_point asks for a repack step, which this older "
                                "collection does not build in sluice. Use ModelStep(name=..., step_args=model.register("
                                "...)) with a Model that has the entry_point: it adds the repack step as the SDK does.")
        if compile_model_family:
            raise PipelineError(f"RegisterModel {name!r}: compile_model_family needs SageMaker Neo, which does not run "
                                "locally; register the uncompiled model.")
        if (model is None) == (estimator is None):
            raise PipelineError(f"RegisterModel {name!r}: give model (a Model) or estimator with model_data, "
                                "not both and not neither.")
        if model is None:
            if model_data is None:
                raise PipelineError(f"RegisterModel {name!r}: with an estimator, give model_data (e.g. "
                                    "step_train.properties.ModelArtifacts.S3ModelArtifacts).")
            model = _estimator_model(estimator, model_data, image_uri)
        if not isinstance(getattr(model, "sagemaker_session", None), PipelineSession):
            raise PipelineError(f"RegisterModel {name!r}: the {'model' if estimator is None else 'estimator'} must "
                                "use a PipelineSession (sagemaker_session=PipelineSession()).")
        step_args = model.register(
            content_types=content_types, response_types=response_types, inference_instances=inference_instances,
            transform_instances=transform_instances, model_package_group_name=model_package_group_name,
            image_uri=image_uri, model_metrics=model_metrics, approval_status=approval_status,
            description=description, drift_check_baselines=drift_check_baselines,
            customer_metadata_properties=customer_metadata_properties, domain=domain, task=task,
            sample_payload_url=sample_payload_url, framework=framework, framework_version=framework_version,
            nearest_model_name=nearest_model_name, data_input_configuration=data_input_configuration, tags=tags,
            **kwargs)
        assert isinstance(step_args, _ModelStepArguments)
        if repack_model_step_retry_policies:
            warnings.warn(f"RegisterModel {name!r}: repack_model_step_retry_policies given, but this collection "
                          "builds no repack step (ModelStep does); they are not used.", stacklevel=2)
        self.steps = [_RegisterModelStep(f"{name}-{self._REGISTER_MODEL_NAME_BASE}", step_args, display_name,
                                         description, depends_on, register_model_step_retry_policies)]
        warnings.warn("We are deprecating the use of RegisterModel. Please use the ModelStep instead. For more, see: "
                      "https://sagemaker.readthedocs.io/en/stable/amazon_sagemaker_model_building_pipeline.html"
                      "#model-step", DeprecationWarning, stacklevel=2)


def _estimator_model(estimator: Any, model_data: Any, image_uri: Any) -> Any:
    """The model an estimator's training produces: ``model_data`` served in ``image_uri`` or the estimator's image
    (for a framework estimator, its inference image), without the training code (no repack step here)."""
    from sluice.model import Model

    image = image_uri or getattr(estimator, "image_uri", None)
    if not image and getattr(estimator, "_framework_name", None):
        from sluice import image_uris

        image = image_uris.retrieve(estimator._framework_name, region=estimator.sagemaker_session.boto_region_name,
                                    version=estimator.framework_version, py_version=estimator.py_version,
                                    instance_type=estimator.instance_type, image_scope="inference")
    if not image:
        image = estimator.training_image_uri()
    return Model(image_uri=image, model_data=model_data, role=estimator.role,
                 sagemaker_session=estimator.sagemaker_session)
