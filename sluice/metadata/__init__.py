"""The metadata layer: the record of jobs, pipeline executions and their steps, models and cache entries."""

from sluice.metadata.store import (
    CacheEntry,
    JobRow,
    MetadataStore,
    MetricPoint,
    ResourceRow,
    StepRow,
    open_metadata,
)

__all__ = ["CacheEntry", "JobRow", "MetadataStore", "MetricPoint", "ResourceRow", "StepRow", "open_metadata"]
