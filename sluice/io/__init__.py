"""Helpers for training scripts: read Pipe-mode channels and RecordIO, write RecordIO.

Standard library only, so a script can import it without pulling in sluice's engine (no boto3, no
SQLAlchemy)::

    from sluice.io import pipe_records
    for record in pipe_records("train"):
        ...
"""

from __future__ import annotations

from sluice.io.pipe import channel_fifo, manifest_rows, pipe_epochs, pipe_records
from sluice.io.recordio import RecordIOWriter, encode_record, read_records

__all__ = [
    "RecordIOWriter",
    "channel_fifo",
    "encode_record",
    "manifest_rows",
    "pipe_epochs",
    "pipe_records",
    "read_records",
]
