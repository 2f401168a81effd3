"""Batch transform's record layer: each SplitType, CRC32-C, and packing records into requests."""

from __future__ import annotations

import gzip
import io
import struct

import pytest

from sluice.channels.transform_records import (
    MB,
    BatchStrategy,
    Record,
    RecordTooLarge,
    SplitType,
    batch_records,
    crc32c,
    encode_tfrecord,
    line_batches,
    masked_crc32c,
    open_input,
    split_records,
)
from sluice.io.recordio import encode_header, encode_record


def split(data: bytes, kind: SplitType) -> list[Record]:
    return list(split_records(io.BytesIO(data), kind))


# ---- None and Line ---------------------------------------------------------------------------------
def test_split_none_sends_the_whole_object_as_one_record():
    assert split(b"a,b\nc,d\n", SplitType.NONE) == [Record(b"a,b\nc,d\n")]


def test_split_line_keeps_order_and_newlines_and_skips_blank_lines():
    records = split(b"1,a\n2,b\n\n  \n3,c", SplitType.LINE)
    assert [r.payload for r in records] == [b"1,a\n", b"2,b\n", b"3,c"]


def test_split_line_keeps_crlf_inside_the_record():
    assert [r.payload for r in split(b"x\r\ny\r\n", SplitType.LINE)] == [b"x\r\n", b"y\r\n"]


def test_gzip_input_is_decompressed_before_splitting():
    raw = gzip.compress(b"1\n2\n3\n")
    records = list(split_records(open_input(io.BytesIO(raw), gzipped=True), SplitType.LINE))
    assert [r.payload for r in records] == [b"1\n", b"2\n", b"3\n"]


# ---- RecordIO ----------------------------------------------------------------------------------------
def test_split_recordio_yields_payloads_and_the_framed_bytes():
    data = encode_record(b"abc") + encode_record(b"") + encode_record(b"12345678")
    records = split(data, SplitType.RECORDIO)
    assert [r.payload for r in records] == [b"abc", b"", b"12345678"]
    assert records[0].framed == encode_record(b"abc")  # header + payload + one padding byte
    assert b"".join(r.framed for r in records) == data


def test_recordio_single_record_drops_the_framing_and_multi_record_keeps_it():
    records = split(encode_record(b"abc") + encode_record(b"de"), SplitType.RECORDIO)
    single = list(batch_records(records, BatchStrategy.SINGLE_RECORD, 6 * MB))
    assert [[r.payload for r in b] for b in single] == [[b"abc"], [b"de"]]
    (multi,) = batch_records(records, BatchStrategy.MULTI_RECORD, 6 * MB)
    assert b"".join(r.packed for r in multi) == encode_record(b"abc") + encode_record(b"de")


def test_split_recordio_joins_multi_part_records():
    part1 = encode_header(4, cflag=1) + b"abcd"
    part2 = encode_header(2, cflag=3) + b"ef\x00\x00"
    (record,) = split(part1 + part2, SplitType.RECORDIO)
    assert record.payload == b"abcdef"
    assert record.framed == part1 + part2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00" * 8, "magic number"),
        (encode_record(b"abcdef")[:-3], "truncated"),
        (encode_header(3)[:5], "truncated"),
    ],
)
def test_corrupt_recordio_is_refused_with_the_offset(data, message):
    with pytest.raises(ValueError, match=message):
        split(data, SplitType.RECORDIO)


# ---- TFRecord ----------------------------------------------------------------------------------------
def test_crc32c_matches_the_standard_check_value():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


def hand_built_tfrecord(data: bytes) -> bytes:
    """A TFRecord written from the spec, independently of encode_tfrecord."""
    def mask(crc: int) -> int:
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", mask(crc32c(length))) + data + struct.pack("<I", mask(crc32c(data)))


def test_masked_crc_of_the_check_string():
    crc = 0xE3069283
    assert masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_split_tfrecord_on_record_boundaries():
    data = hand_built_tfrecord(b"123456789") + hand_built_tfrecord(b"") + hand_built_tfrecord(b"x" * 300)
    records = split(data, SplitType.TFRECORD)
    assert [r.payload for r in records] == [b"123456789", b"", b"x" * 300]
    assert records[0].framed == hand_built_tfrecord(b"123456789") == encode_tfrecord(b"123456789")
    (multi,) = batch_records(records, BatchStrategy.MULTI_RECORD, MB)
    assert b"".join(r.packed for r in multi) == data  # a MultiRecord request is a valid TFRecord stream


def test_tfrecord_with_a_bad_data_checksum_is_refused():
    good = bytearray(hand_built_tfrecord(b"123456789"))
    good[14] ^= 0xFF  # flip a data byte
    with pytest.raises(ValueError, match="data checksum"):
        split(bytes(good), SplitType.TFRECORD)


def test_tfrecord_with_a_bad_length_checksum_is_refused():
    good = bytearray(hand_built_tfrecord(b"abc"))
    good[8] ^= 0x01
    with pytest.raises(ValueError, match="length field's checksum"):
        split(bytes(good), SplitType.TFRECORD)


def test_truncated_tfrecord_is_refused():
    with pytest.raises(ValueError, match="truncated"):
        split(hand_built_tfrecord(b"abcdef")[:-6], SplitType.TFRECORD)


# ---- batching -----------------------------------------------------------------------------------------
def records_of(*sizes: int) -> list[Record]:
    return [Record(bytes([65 + i]) * n) for i, n in enumerate(sizes)]


def test_single_record_sends_one_record_per_request():
    batches = list(batch_records(records_of(3, 3, 3), BatchStrategy.SINGLE_RECORD, 10))
    assert [len(b) for b in batches] == [1, 1, 1]


def test_multi_record_packs_whole_records_up_to_the_limit():
    batches = list(batch_records(records_of(4, 4, 4, 2, 9, 1), BatchStrategy.MULTI_RECORD, 10))
    assert [[len(r.payload) for r in b] for b in batches] == [[4, 4], [4, 2], [9, 1]]
    assert all(sum(len(r.payload) for r in b) <= 10 for b in batches)


def test_multi_record_keeps_record_order():
    records = records_of(*([3] * 20))
    flat = [r for b in batch_records(records, BatchStrategy.MULTI_RECORD, 10) for r in b]
    assert flat == records


def test_a_record_over_the_limit_fails_with_both_sizes():
    with pytest.raises(RecordTooLarge, match=r"record 2 is 2,097,153 bytes, larger than MaxPayloadInMB=2 \(2,097,152"):
        list(batch_records([Record(b"a"), Record(b"b" * (2 * MB + 1))], BatchStrategy.MULTI_RECORD, 2 * MB))
    with pytest.raises(RecordTooLarge):
        list(batch_records([Record(b"b" * (MB + 1))], BatchStrategy.SINGLE_RECORD, MB))


def test_max_payload_zero_means_no_limit():
    (batch,) = batch_records(records_of(5, 5, 5), BatchStrategy.MULTI_RECORD, 0)
    assert len(batch) == 3


def test_batch_strategy_parses_both_spellings():
    assert BatchStrategy.parse("MULTI_RECORD") is BatchStrategy.MULTI_RECORD
    assert BatchStrategy.parse("SingleRecord") is BatchStrategy.SINGLE_RECORD
    assert BatchStrategy.SINGLE_RECORD.env_value == "SINGLE_RECORD"
    with pytest.raises(ValueError):
        BatchStrategy.parse("Mini")


# ---- the Line + MultiRecord fast path ---------------------------------------------------------------
def slow_batches(data: bytes, limit: int) -> list[bytes]:
    records = split(data, SplitType.LINE)
    return [b"".join(r.payload for r in b) for b in batch_records(records, BatchStrategy.MULTI_RECORD, limit)]


@pytest.mark.parametrize("limit", [0, 12, 13, 40, 1000])
def test_line_batches_match_split_then_batch(limit):
    import random

    rng = random.Random(limit)
    lines = [("x" * rng.randint(1, 11)).encode() + b"\n" for _ in range(300)]
    data = b"".join(lines) + b"tail"  # a last line without a newline
    fast = list(line_batches(io.BytesIO(data), limit, read_size=7))  # tiny reads exercise the buffering
    assert fast == slow_batches(data, limit)
    assert all(len(b) <= limit for b in fast) or limit == 0


def test_line_batches_drop_blank_lines_and_never_exceed_the_limit():
    data = b"1,a\n\n2,b\n  \n3,c\n"
    fast = list(line_batches(io.BytesIO(data), 9))
    assert b"".join(fast) == b"1,a\n2,b\n3,c\n"
    assert all(len(b) <= 9 for b in fast)


def test_line_batches_refuse_a_long_line_as_the_slow_path_does():
    data = b"ok\nok\n" + b"y" * 50 + b"\nok\n"
    with pytest.raises(RecordTooLarge) as fast:
        list(line_batches(io.BytesIO(data), 20, read_size=8))
    with pytest.raises(RecordTooLarge) as slow:
        slow_batches(data, 20)
    assert str(fast.value) == str(slow.value)
    assert "record 3 is 51 bytes" in str(fast.value)
