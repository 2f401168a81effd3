"""What an input channel or an output asks for, normalised: enums instead of strings, one shape for
processing inputs and training channels alike."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ChannelSpec",
    "Compression",
    "DataType",
    "Distribution",
    "InputMode",
    "OutputSpec",
    "RecordWrapping",
    "UploadMode",
]


class InputMode(StrEnum):
    FILE = "File"
    PIPE = "Pipe"
    FAST_FILE = "FastFile"


class DataType(StrEnum):
    S3_PREFIX = "S3Prefix"
    MANIFEST_FILE = "ManifestFile"
    AUGMENTED_MANIFEST_FILE = "AugmentedManifestFile"


class Distribution(StrEnum):
    FULLY_REPLICATED = "FullyReplicated"
    SHARDED_BY_S3_KEY = "ShardedByS3Key"


class Compression(StrEnum):
    NONE = "None"
    GZIP = "Gzip"


class RecordWrapping(StrEnum):
    NONE = "None"
    RECORDIO = "RecordIO"


class UploadMode(StrEnum):
    END_OF_JOB = "EndOfJob"
    CONTINUOUS = "Continuous"


@dataclass(frozen=True)
class ChannelSpec:
    """One input channel: where its objects are and how an instance receives them.

    ``local_path`` is the path the script sees (``/opt/ml/processing/input`` or
    ``/opt/ml/input/data/train``); the runtime maps it into each instance's own tree.
    """

    name: str
    s3_uri: str
    local_path: str
    data_type: DataType = DataType.S3_PREFIX
    input_mode: InputMode = InputMode.FILE
    distribution: Distribution = Distribution.FULLY_REPLICATED
    compression: Compression = Compression.NONE
    record_wrapping: RecordWrapping = RecordWrapping.NONE
    attribute_names: tuple[str, ...] = ()
    shuffle_seed: int | None = None
    content_type: str | None = None
    #: Processing's Pipe FIFO is the local path itself; training's are ``<local_path>_<epoch>``.
    pipe_per_epoch: bool = False


@dataclass(frozen=True)
class OutputSpec:
    """One output: a directory the script fills, uploaded to ``s3_uri``."""

    name: str
    s3_uri: str
    local_path: str
    upload_mode: UploadMode = UploadMode.END_OF_JOB
    #: Upload an EndOfJob output even when the job fails or stops. Batch transform sets it: each of its
    #: files is a finished ``<object>.out``, which the service keeps even when other objects failed.
    upload_on_failure: bool = False
