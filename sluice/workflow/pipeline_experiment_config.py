"""``sluice.workflow.pipeline_experiment_config``: the experiment and trial an execution is recorded under.

The default is ``(PipelineName, PipelineExecutionId)``; ``Pipeline(pipeline_experiment_config=None)``
emits ``"PipelineExperimentConfig": null`` (contract 5.13).
"""

from __future__ import annotations

from typing import Any

from sluice.workflow.entities import Entity, PipelineVariable, serialize

__all__ = ["PipelineExperimentConfig", "PipelineExperimentConfigProperties", "PipelineExperimentConfigProperty"]


class PipelineExperimentConfig(Entity):
    """Experiment name and trial name for an execution; each a string or a pipeline variable."""

    def __init__(self, experiment_name: Any, trial_name: Any) -> None:
        self.experiment_name = experiment_name
        self.trial_name = trial_name

    def to_request(self) -> dict[str, Any]:
        return {"ExperimentName": serialize(self.experiment_name), "TrialName": serialize(self.trial_name)}


class PipelineExperimentConfigProperty(PipelineVariable):
    """``{"Get": "PipelineExperimentConfig.<name>"}``."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def expr(self) -> dict[str, str]:
        return {"Get": f"PipelineExperimentConfig.{self.name}"}


class PipelineExperimentConfigProperties:
    """The experiment config's values, for use inside step arguments."""

    EXPERIMENT_NAME = PipelineExperimentConfigProperty("ExperimentName")
    TRIAL_NAME = PipelineExperimentConfigProperty("TrialName")
