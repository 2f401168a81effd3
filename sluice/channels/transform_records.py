"""Batch transform's record layer: split an input object into records, pack records into requests.

Pure functions over bytes and binary streams, so each rule is tested on its own and the batch loop
(:mod:`sluice.serving.batch`) only wires them together.

**Splitting** (``TransformInput.SplitType``), each splitter yields :class:`Record` s in file order:

* ``None``: the whole object is one record.
* ``Line``: one record per line, the newline kept (it is part of the bytes sent). Lines that hold only
  whitespace are skipped: they carry no record, and keeping them would send empty requests and shift
  a join's input/output pairing.
* ``RecordIO``: one record per RecordIO record (:mod:`sluice.io.recordio` framing; multi-part records
  are joined the way the AWS readers join them).
* ``TFRecord``: one record per TFRecord record: ``uint64`` length (little-endian), masked CRC32-C of the
  length, the data, masked CRC32-C of the data. Both checksums are verified, so a corrupt or truncated
  file fails its object with the byte offset instead of sending garbage to the model.

**What a binary record sends.** The API says padding "is removed if BatchStrategy is SingleRecord" and
"not removed if MultiRecord". sluice reads "padding" as the whole wrapping around the payload, which is
what makes both halves useful: a ``SingleRecord`` request carries the bare payload (one protobuf, one
image — decodable as it is), and a ``MultiRecord`` request carries complete framed records back to back,
a valid RecordIO / TFRecord stream the model can split again (AWS's own TFRecord example container parses
``MultiRecord`` bodies exactly so). :attr:`Record.payload` and :attr:`Record.framed` hold both forms.

**Batching** (``BatchStrategy``): ``SingleRecord`` sends one record per request; ``MultiRecord`` packs as
many whole records as fit in ``MaxPayloadInMB`` (1 MB = 1,048,576 bytes), never splitting one. A record
larger than the limit on its own fails its object (:class:`RecordTooLarge`). ``MaxPayloadInMB=0`` means no
limit (the service's "chunked encoding" setting): ``MultiRecord`` then sends the object in one request.
"""

from __future__ import annotations

import gzip
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, BinaryIO

from sluice.io.recordio import read_framed_records

__all__ = [
    "MB",
    "BatchStrategy",
    "Record",
    "RecordTooLarge",
    "SplitType",
    "batch_records",
    "crc32c",
    "encode_tfrecord",
    "line_batches",
    "masked_crc32c",
    "open_input",
    "split_records",
]

#: One "MB" of ``MaxPayloadInMB``.
MB = 1024 * 1024


class SplitType(StrEnum):
    NONE = "None"
    LINE = "Line"
    RECORDIO = "RecordIO"
    TFRECORD = "TFRecord"


class BatchStrategy(StrEnum):
    SINGLE_RECORD = "SingleRecord"
    MULTI_RECORD = "MultiRecord"

    @property
    def env_value(self) -> str:
        """The spelling of ``SAGEMAKER_BATCH_STRATEGY`` and ``/execution-parameters``."""
        return "SINGLE_RECORD" if self is BatchStrategy.SINGLE_RECORD else "MULTI_RECORD"

    @classmethod
    def parse(cls, value: str) -> BatchStrategy:
        """Either spelling: the API's ``MultiRecord`` or the container's ``MULTI_RECORD``."""
        norm = value.replace("_", "").lower()
        for member in cls:
            if member.value.lower() == norm:
                return member
        raise ValueError(f"unknown batch strategy {value!r}; use SingleRecord or MultiRecord.")


@dataclass(frozen=True, slots=True)
class Record:
    """One record of an input object: what a ``SingleRecord`` request sends, and what ``MultiRecord`` packs."""

    payload: bytes
    framed: bytes | None = None  # the record with its framing, for the binary formats
    rows: tuple[Any, ...] | None = None  # its decoded input rows, kept for JoinSource=Input

    @property
    def packed(self) -> bytes:
        """The bytes this record contributes to a ``MultiRecord`` request."""
        return self.payload if self.framed is None else self.framed


class RecordTooLarge(ValueError):
    """A single record does not fit in ``MaxPayloadInMB``."""


# ---- input ---------------------------------------------------------------------------------------
def open_input(fileobj: BinaryIO, gzipped: bool) -> BinaryIO:
    """``fileobj``, decompressed on the fly when the object is gzip (``CompressionType=Gzip``)."""
    if not gzipped:
        return fileobj
    return gzip.GzipFile(fileobj=fileobj, mode="rb")  # type: ignore[return-value]


# ---- splitters -----------------------------------------------------------------------------------
def split_records(fileobj: BinaryIO, split: SplitType) -> Iterator[Record]:
    """The records of one object, in order (see the module docstring). Raises ``ValueError`` on corrupt framing."""
    if split is SplitType.NONE:
        yield Record(fileobj.read())
    elif split is SplitType.LINE:
        yield from _lines(fileobj)
    elif split is SplitType.RECORDIO:
        yield from _recordio(fileobj)
    elif split is SplitType.TFRECORD:
        yield from _tfrecords(fileobj)
    else:  # pragma: no cover - the enum is closed
        raise ValueError(f"unknown SplitType {split!r}")


def _lines(fileobj: BinaryIO) -> Iterator[Record]:
    for line in fileobj:
        if line.strip():
            yield Record(line)


def _read(fileobj: BinaryIO, n: int) -> bytes:
    data = fileobj.read(n)
    while data and len(data) < n:
        more = fileobj.read(n - len(data))
        if not more:
            break
        data += more
    return data


def _recordio(fileobj: BinaryIO) -> Iterator[Record]:
    """RecordIO records: payload (parts joined) and the framed bytes exactly as they were in the object."""
    for payload, framed in read_framed_records(fileobj):
        yield Record(payload, framed)


# ---- TFRecord and CRC32-C ------------------------------------------------------------------------
def _crc32c_table() -> tuple[int, ...]:
    poly = 0x82F63B78  # Castagnoli, reflected
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _crc32c_table()


def _accelerated() -> Callable[[bytes], int] | None:
    """A C implementation when one happens to be installed (``google-crc32c`` or ``crc32c``); none is required."""
    try:
        import google_crc32c  # type: ignore[import-not-found]

        if google_crc32c.implementation == "c":
            return lambda data: int(google_crc32c.value(bytes(data)))
    except ImportError:
        pass
    try:
        import crc32c as _crc32c  # type: ignore[import-not-found]

        return lambda data: int(_crc32c.crc32c(data))
    except ImportError:
        return None


_FAST_CRC = _accelerated()


def crc32c(data: bytes) -> int:
    """CRC32-C (Castagnoli) of ``data``. ``crc32c(b"123456789") == 0xE3069283``.

    Table-driven pure Python (~15 MB/s, which bounds TFRecord splitting) unless a C implementation is
    installed, which is then used instead.
    """
    if _FAST_CRC is not None:
        return _FAST_CRC(data)
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked checksum: the CRC rotated right by 15 bits plus ``0xA282EAD8``, mod 2^32."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


def encode_tfrecord(data: bytes) -> bytes:
    """``data`` framed as one TFRecord record."""
    length = _U64.pack(len(data))
    return length + _U32.pack(masked_crc32c(length)) + data + _U32.pack(masked_crc32c(data))


def _tfrecords(fileobj: BinaryIO) -> Iterator[Record]:
    offset = 0
    while True:
        head = _read(fileobj, 12)
        if not head:
            return
        if len(head) < 12:
            raise ValueError(f"TFRecord object is truncated at byte {offset}: {len(head)} byte(s) of a 12-byte header.")
        (length,) = _U64.unpack_from(head)
        (length_crc,) = _U32.unpack_from(head, 8)
        if masked_crc32c(head[:8]) != length_crc:
            raise ValueError(
                f"TFRecord object is corrupt at byte {offset}: the length field's checksum does not match. Is the "
                "object TFRecord? Use SplitType 'Line' or 'None' for other data."
            )
        body = _read(fileobj, length + 4)
        if len(body) < length + 4:
            raise ValueError(
                f"TFRecord object is truncated at byte {offset}: the record declares {length} data byte(s) "
                f"but {max(0, len(body) - 4)} follow."
            )
        data = body[:length]
        (data_crc,) = _U32.unpack_from(body, length)
        if masked_crc32c(data) != data_crc:
            raise ValueError(f"TFRecord object is corrupt at byte {offset}: the data checksum of the record there "
                             "does not match.")
        yield Record(data, head + body)
        offset += 12 + length + 4


# ---- batching ------------------------------------------------------------------------------------
def batch_records(
    records: Iterable[Record],
    strategy: BatchStrategy,
    max_payload_bytes: int,
    *,
    size: Callable[[Record], int] | None = None,
) -> Iterator[list[Record]]:
    """Group ``records`` into requests (see the module docstring); ``max_payload_bytes`` 0 means no limit.

    ``size`` measures a record as it will be sent (after an input filter, say); by default its
    :attr:`Record.packed` length for ``MultiRecord`` and its payload length for ``SingleRecord``.
    Raises :class:`RecordTooLarge` when one record alone exceeds the limit.
    """
    single = strategy is BatchStrategy.SINGLE_RECORD
    measure = size or ((lambda r: len(r.payload)) if single else (lambda r: len(r.packed)))
    batch: list[Record] = []
    used = 0
    for index, record in enumerate(records):
        n = measure(record)
        if max_payload_bytes and n > max_payload_bytes:
            raise RecordTooLarge(
                f"record {index + 1} is {n:,} bytes, larger than MaxPayloadInMB={max_payload_bytes // MB} "
                f"({max_payload_bytes:,} bytes); a record is never split across requests, so raise max_payload "
                "(at most 100) or split the data into smaller records."
            )
        if single:
            yield [record]
            continue
        if batch and max_payload_bytes and used + n > max_payload_bytes:
            yield batch
            batch, used = [], 0
        batch.append(record)
        used += n
    if batch:
        yield batch


#: A blank line after the first (starting with the literal newline keeps the scan at memchr speed).
_BLANK_LINE = re.compile(rb"\n[ \t\r\f\v]*(?:\n|\Z)")


def _drop_blank_lines(data: bytes) -> bytes:
    first = data[: data.find(b"\n") + 1] if b"\n" in data else data
    if first.strip() and not _BLANK_LINE.search(data):
        return data
    return b"".join(line for line in data.splitlines(keepends=True) if line.strip())


def line_batches(fileobj: BinaryIO, max_payload_bytes: int, read_size: int = 4 * MB) -> Iterator[bytes]:
    """``MultiRecord`` requests of whole lines, cut from the stream in large reads: the fast path.

    The same contract as :func:`split_records` (``Line``) feeding :func:`batch_records` (``MultiRecord``) —
    whole lines in order, blank lines dropped, no request over ``max_payload_bytes``, a line too long for
    the limit refused with its number and size — without handling each line in Python, which dominates
    the cost of a large object otherwise. One difference: a request is cut before blank lines are dropped,
    so data with blank lines may be sent in slightly smaller requests than the limit allows.
    ``max_payload_bytes`` 0 (no limit) sends the whole object in one request.
    """
    if not max_payload_bytes:
        data = _drop_blank_lines(fileobj.read())
        if data:
            yield data
        return
    buf = b""
    records = 0
    eof = False
    while True:
        while not eof and len(buf) <= max_payload_bytes:
            chunk = fileobj.read(max(read_size, max_payload_bytes + 1 - len(buf)))
            if not chunk:
                eof = True
            buf += chunk
        if eof and len(buf) <= max_payload_bytes:
            batch = _drop_blank_lines(buf)
            if batch:
                yield batch
            return
        cut = buf.rfind(b"\n", 0, max_payload_bytes)
        if cut < 0:  # the first line alone is over the limit: find its length for the message
            end = buf.find(b"\n")
            while end < 0 and not eof:
                chunk = fileobj.read(read_size)
                if not chunk:
                    eof = True
                buf += chunk
                end = buf.find(b"\n")
            size = end + 1 if end >= 0 else len(buf)
            raise RecordTooLarge(
                f"record {records + 1} is {size:,} bytes, larger than MaxPayloadInMB={max_payload_bytes // MB} "
                f"({max_payload_bytes:,} bytes); a record is never split across requests, so raise max_payload "
                "(at most 100) or split the data into smaller records."
            )
        batch = _drop_blank_lines(buf[: cut + 1])
        buf = buf[cut + 1 :]
        if batch:
            records += batch.count(b"\n")
            yield batch
