"""The metadata layer: the record of jobs (and later executions, models, cache entries)."""

from sluice.metadata.store import JobRow, MetadataStore, MetricPoint, ResourceRow, open_metadata

__all__ = ["JobRow", "MetadataStore", "MetricPoint", "ResourceRow", "open_metadata"]
