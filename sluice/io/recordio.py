"""RecordIO framing as SageMaker's Pipe mode writes it (``RecordWrapperType=RecordIO``).

Each record part is ``magic | lrecord | payload | padding``:

* ``magic`` is ``0xCED7230A`` as a little-endian ``uint32`` (bytes ``0a 23 d7 ce``);
* ``lrecord`` is a little-endian ``uint32``, ``(cflag << 29) | length``, so a part holds at most
  ``2**29 - 1`` bytes;
* the payload is followed by zero bytes up to a 4-byte boundary.

``cflag`` 0 is a complete record; 1, 2 and 3 are the start, middle and end parts of a record split
across parts. :class:`RecordIOWriter` writes complete records only, which every reader (dmlc, MLIO,
TFX, the SageMaker SDK) reads the same way. :func:`read_records` also reads multi-part records, and
concatenates their parts *without* re-inserting the magic between them: that is what the AWS readers
(MLIO, sagemaker-tensorflow-extensions) do, and it differs from dmlc's reader, which puts the magic
back because dmlc's writer drops it where it splits. Streams written by sluice never depend on the
difference.

Standard library only: training scripts import this.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

__all__ = [
    "MAGIC",
    "MAX_PART_LENGTH",
    "RecordIOWriter",
    "encode_header",
    "encode_record",
    "padding",
    "read_framed_records",
    "read_records",
]

#: The magic number that starts every record part.
MAGIC = 0xCED7230A
#: The largest payload one part can hold (29 bits of length).
MAX_PART_LENGTH = (1 << 29) - 1

_HEADER = struct.Struct("<II")
_ZEROS = b"\x00\x00\x00"


def padding(length: int) -> bytes:
    """The zero bytes that follow a payload of ``length`` bytes, up to the next 4-byte boundary."""
    return _ZEROS[: -length % 4]


def encode_header(length: int, cflag: int = 0) -> bytes:
    """The 8-byte header of one record part holding ``length`` payload bytes."""
    if not 0 <= length <= MAX_PART_LENGTH:
        raise ValueError(
            f"a RecordIO record part holds at most {MAX_PART_LENGTH} bytes (2^29-1); this payload is {length} bytes. "
            "Split the data into smaller records."
        )
    if not 0 <= cflag <= 3:
        raise ValueError(f"RecordIO cflag must be 0 (complete), 1 (start), 2 (middle) or 3 (end), not {cflag}.")
    return _HEADER.pack(MAGIC, (cflag << 29) | length)


def encode_record(payload: bytes) -> bytes:
    """``payload`` framed as one complete (cflag 0) record: header, payload, padding."""
    return encode_header(len(payload)) + bytes(payload) + padding(len(payload))


class RecordIOWriter:
    """Writes complete records to a binary file object (a file, a FIFO, a ``BytesIO``)."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self.fileobj = fileobj
        #: Bytes written so far, framing included.
        self.bytes_written = 0

    def write(self, payload: bytes) -> int:
        """Write ``payload`` as one record; returns the bytes written. Refuses payloads over 2^29-1 bytes."""
        header = encode_header(len(payload))  # validates the length before anything is written
        n = len(payload)
        self.fileobj.write(header)
        self.fileobj.write(payload)
        if n % 4:
            self.fileobj.write(padding(n))
        written = 8 + n + (-n % 4)
        self.bytes_written += written
        return written

    def flush(self) -> None:
        self.fileobj.flush()


def _read_exact(fileobj: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes; fewer only at end of stream (pipes return short reads)."""
    data = fileobj.read(n)
    if data is None:
        raise ValueError("RecordIO stream is non-blocking and has no data ready; read it in blocking mode.")
    if len(data) == n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = fileobj.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def read_records(fileobj: BinaryIO) -> Iterator[bytes]:
    """Yield each record's payload in order, multi-part records joined (see the module docstring).

    Raises :class:`ValueError` naming the byte offset on a bad magic number, an unknown or out-of-order
    continuation flag, or a stream that ends inside a record.
    """
    for payload, _framed in read_framed_records(fileobj):
        yield payload


def read_framed_records(fileobj: BinaryIO) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(payload, framed)`` per record: the payload (parts joined) and its bytes exactly as stored,
    headers and padding included (batch transform forwards those for MultiRecord)."""
    offset = 0
    parts: list[bytes] = []
    framed: list[bytes] = []
    start = 0  # offset of the first part of the record being assembled
    while True:
        header = _read_exact(fileobj, 8)
        if not header:
            if parts:
                raise ValueError(
                    f"RecordIO stream ends inside a multi-part record that started at byte {start}: "
                    "its end part (cflag 3) is missing. The stream is truncated."
                )
            return
        if len(header) < 8:
            raise ValueError(
                f"RecordIO stream is truncated at byte {offset}: {len(header)} byte(s) of an 8-byte record header."
            )
        magic, lrecord = _HEADER.unpack(header)
        if magic != MAGIC:
            raise ValueError(
                f"RecordIO stream is corrupt at byte {offset}: magic number is {magic:#010x}, expected {MAGIC:#010x}. "
                "Is this data RecordIO-wrapped?"
            )
        cflag, length = lrecord >> 29, lrecord & MAX_PART_LENGTH
        if cflag > 3:
            raise ValueError(f"RecordIO stream is corrupt at byte {offset}: unknown cflag {cflag} (expected 0-3).")
        padded = length + (-length % 4)
        body = _read_exact(fileobj, padded)
        if len(body) < padded:
            raise ValueError(
                f"RecordIO stream is truncated at byte {offset}: the record there declares {length} payload byte(s) "
                f"({padded} with padding) but only {len(body)} follow."
            )
        payload = body[:length] if padded != length else body
        if cflag == 0:
            if parts:
                raise ValueError(
                    f"RecordIO stream is corrupt at byte {offset}: a complete record (cflag 0) inside the multi-part "
                    f"record that started at byte {start}."
                )
            yield payload, header + body
        elif cflag == 1:
            if parts:
                raise ValueError(
                    f"RecordIO stream is corrupt at byte {offset}: a new multi-part record starts (cflag 1) before the "
                    f"one that started at byte {start} ended."
                )
            parts, framed, start = [payload], [header + body], offset
        else:
            if not parts:
                raise ValueError(
                    f"RecordIO stream is corrupt at byte {offset}: {'a middle' if cflag == 2 else 'an end'} part "
                    f"(cflag {cflag}) with no start part (cflag 1) before it."
                )
            parts.append(payload)
            framed.append(header + body)
            if cflag == 3:
                yield b"".join(parts), b"".join(framed)
                parts, framed = [], []
        offset += 8 + padded
