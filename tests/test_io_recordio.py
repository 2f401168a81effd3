"""RecordIO framing: exact bytes, round trips, multi-part records and clear errors on bad streams."""

from __future__ import annotations

import io
import struct

import pytest

from sluice.io import RecordIOWriter, encode_record, read_records
from sluice.io.recordio import MAX_PART_LENGTH, encode_header


def part(payload: bytes, cflag: int) -> bytes:
    """One record part built by hand from the format table, independent of the writer."""
    pad = b"\x00" * (((len(payload) + 3) >> 2 << 2) - len(payload))
    return struct.pack("<I", 0xCED7230A) + struct.pack("<I", (cflag << 29) | len(payload)) + payload + pad


def test_encode_record_lays_out_magic_length_payload_and_padding_exactly():
    assert encode_record(b"abc").hex() == "0a23d7ce" "03000000" "616263" "00"
    assert encode_record(b"abcd").hex() == "0a23d7ce" "04000000" "61626364"  # aligned: no padding
    assert encode_record(b"").hex() == "0a23d7ce" "00000000"
    assert encode_record(b"hello").hex() == "0a23d7ce" "05000000" "68656c6c6f" "000000"


def test_writer_writes_complete_records_that_read_back_in_order():
    payloads = [b"", b"a", b"ab", b"abc", b"abcd", bytes(range(256)) * 3, b"\x0a\x23\xd7\xce" * 5]
    buf = io.BytesIO()
    writer = RecordIOWriter(buf)
    for p in payloads:
        writer.write(p)
    data = buf.getvalue()
    assert writer.bytes_written == len(data)
    assert data == b"".join(part(p, 0) for p in payloads)
    assert list(read_records(io.BytesIO(data))) == payloads


def test_writer_refuses_a_payload_longer_than_one_record_part():
    class Huge(bytes):
        def __len__(self) -> int:  # the length check must come before any byte is written
            return MAX_PART_LENGTH + 1

    buf = io.BytesIO()
    with pytest.raises(ValueError, match=r"at most 536870911 bytes \(2\^29-1\)"):
        RecordIOWriter(buf).write(Huge(b"x"))
    assert buf.getvalue() == b""
    assert len(encode_header(MAX_PART_LENGTH)) == 8


def test_multi_part_record_is_joined_without_reinserting_the_magic():
    stream = (
        part(b"first", 0)
        + part(b"ab", 1) + part(b"cde", 2) + part(b"", 2) + part(b"fgh", 3)
        + part(b"last", 0)
    )
    assert list(read_records(io.BytesIO(stream))) == [b"first", b"abcdefgh", b"last"]


def test_corrupt_magic_names_the_byte_offset():
    stream = part(b"abc", 0) + b"\xde\xad\xbe\xef" + struct.pack("<I", 3) + b"xyz\x00"
    records = read_records(io.BytesIO(stream))
    assert next(records) == b"abc"
    with pytest.raises(ValueError, match=r"corrupt at byte 12: magic number is 0xefbeadde"):
        next(records)


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (part(b"abc", 0)[:6], r"truncated at byte 0: 6 byte\(s\) of an 8-byte record header"),
        (part(b"abcdef", 0)[:11],
         r"truncated at byte 0: the record there declares 6 payload byte\(s\) \(8 with padding\)"),
        (part(b"ok", 0) + part(b"abc", 1), r"ends inside a multi-part record that started at byte 12"),
        (part(b"abc", 2), r"corrupt at byte 0: a middle part \(cflag 2\) with no start part"),
        (part(b"abc", 3), r"corrupt at byte 0: an end part \(cflag 3\) with no start part"),
        (part(b"a", 1) + part(b"b", 0), r"corrupt at byte 12: a complete record \(cflag 0\) inside the multi-part"),
        (part(b"a", 1) + part(b"b", 1), r"corrupt at byte 12: a new multi-part record starts"),
        (struct.pack("<II", 0xCED7230A, (5 << 29) | 1) + b"a\x00\x00\x00", r"unknown cflag 5"),
    ],
)
def test_bad_streams_raise_value_error_with_offset(stream: bytes, message: str):
    with pytest.raises(ValueError, match=message):
        list(read_records(io.BytesIO(stream)))
