"""Job status and its one transition table."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["JobStatus", "allowed_from"]


class JobStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    STOPPING = "Stopping"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPED = "Stopped"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED})

#: status -> the statuses it may move to. Terminal statuses move nowhere.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.IN_PROGRESS: frozenset({JobStatus.STOPPING, JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED}),
    JobStatus.STOPPING: frozenset({JobStatus.STOPPED, JobStatus.COMPLETED, JobStatus.FAILED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.STOPPED: frozenset(),
}


def allowed_from(target: JobStatus) -> list[str]:
    """The statuses from which a job may move to ``target`` (for a conditional update)."""
    return [str(s) for s, targets in TRANSITIONS.items() if target in targets]
