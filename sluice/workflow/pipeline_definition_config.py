"""``sluice.workflow.pipeline_definition_config``: switches that change what the definition holds."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PipelineDefinitionConfig"]


@dataclass(frozen=True)
class PipelineDefinitionConfig:
    """``use_custom_job_prefix``: keep each job step's base job name (timestamp trimmed) in its arguments.

    Off by default, as in the SDK: job names are left out and the service names each job at execution.
    """

    use_custom_job_prefix: bool = False
