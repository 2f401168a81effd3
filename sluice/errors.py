"""Every error sluice raises on purpose.

The tree::

    SluiceError
    ├── SpecError                 a request, argument or file is malformed; fix the input
    │   └── ResourceLimitExceeded an instance type is unknown or over its quota
    ├── StorageError              object storage refused or failed
    │   ├── InvalidKeyError       a key would leave its bucket
    │   └── NoSuchKeyError        an object or prefix does not exist
    ├── ExecutionError            a job failed, timed out or was stopped (``retryable`` says if trying again helps)
    └── PipelineError             a pipeline definition or execution problem

Each message says what happened, names the offending value and says what to do.
Every class pickles (its constructor takes the message alone), so errors cross process and Ray boundaries.
"""

from __future__ import annotations

__all__ = [
    "ExecutionError",
    "InvalidKeyError",
    "NoSuchKeyError",
    "PipelineError",
    "ResourceLimitExceeded",
    "SluiceError",
    "SpecError",
    "StorageError",
]


class SluiceError(Exception):
    """Root of every error sluice raises on purpose."""


class SpecError(SluiceError, ValueError):
    """A request or argument is malformed. Raised before any work starts."""


class ResourceLimitExceeded(SpecError):
    """An instance type is unknown, or a job asks for more instances than its quota allows."""


class StorageError(SluiceError):
    """Object storage refused or failed an operation."""


class InvalidKeyError(StorageError, SpecError):
    """A key would escape its bucket (``..``, an absolute path, a NUL byte)."""


class NoSuchKeyError(StorageError, KeyError):
    """The object or prefix does not exist."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""


class ExecutionError(SluiceError):
    """A job failed, timed out or was stopped."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message, retryable)
        self.retryable = retryable

    def __str__(self) -> str:
        return str(self.args[0])


class PipelineError(SluiceError):
    """A pipeline definition or execution problem."""
