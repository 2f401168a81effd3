"""Serializers and deserializers behave as the SageMaker SDK's do (names, defaults, outputs)."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from sluice.deserializers import (
    BytesDeserializer,
    CSVDeserializer,
    JSONDeserializer,
    JSONLinesDeserializer,
    NumpyDeserializer,
    StreamDeserializer,
    StringDeserializer,
)
from sluice.serializers import (
    CSVSerializer,
    IdentitySerializer,
    JSONLinesSerializer,
    JSONSerializer,
    NumpySerializer,
)
from sluice.serving.client import Body


def test_serializers_name_their_content_types():
    assert CSVSerializer().CONTENT_TYPE == "text/csv"
    assert JSONSerializer().CONTENT_TYPE == "application/json"
    assert NumpySerializer().CONTENT_TYPE == "application/x-npy"
    assert IdentitySerializer().CONTENT_TYPE == "application/octet-stream"
    assert JSONLinesSerializer().CONTENT_TYPE == "application/jsonlines"
    assert CSVSerializer(content_type="text/plain").CONTENT_TYPE == "text/plain"
    with pytest.raises(ValueError, match="content_type must be a string"):
        CSVSerializer(content_type=["text/csv"])  # type: ignore[arg-type]


def test_csv_serializer_rows_arrays_frames_and_files():
    s = CSVSerializer()
    assert s.serialize([1, 2, 3]) == "1,2,3"
    assert s.serialize([[1, 2], [3, 4]]) == "1,2\n3,4"
    assert s.serialize(np.array([[1.5, 2], [3, 4]])) == "1.5,2.0\n3.0,4.0"
    assert s.serialize(np.array([1, 2])) == "1,2"
    assert s.serialize("already,csv") == "already,csv"
    assert s.serialize(pd.DataFrame({"a": [1, 2], "b": [3, 4]})) == "1,3\n2,4\n"
    assert s.serialize(io.StringIO("from,a,file")) == "from,a,file"
    with pytest.raises(ValueError, match="Cannot serialize empty array"):
        s.serialize([])


def test_json_numpy_identity_and_json_lines_serializers():
    assert JSONSerializer().serialize({"a": np.array([1, 2]), "b": 3}) == '{"a": [1, 2], "b": 3}'
    assert JSONSerializer().serialize(np.array([[1, 2]])) == "[[1, 2]]"
    assert JSONSerializer().serialize([1, "x"]) == '[1, "x"]'
    npy = NumpySerializer().serialize([[1, 2], [3, 4]])
    assert np.load(io.BytesIO(npy)).tolist() == [[1, 2], [3, 4]]
    assert np.load(io.BytesIO(NumpySerializer(dtype="float32").serialize([1, 2]))).dtype == np.float32
    with pytest.raises(ValueError, match="empty"):
        NumpySerializer().serialize(np.array([]))
    assert IdentitySerializer().serialize(b"\x00raw") == b"\x00raw"
    assert JSONLinesSerializer().serialize([{"a": 1}, [2]]) == '{"a": 1}\n[2]'
    assert JSONLinesSerializer().serialize('{"a": 1}') == '{"a": 1}'


def test_deserializers_accept_tuples_and_read_streams():
    assert JSONDeserializer().ACCEPT == ("application/json",)
    assert CSVDeserializer().ACCEPT == ("text/csv",)
    assert NumpyDeserializer().ACCEPT == ("application/x-npy",)
    assert BytesDeserializer().ACCEPT == ("*/*",)
    assert JSONLinesDeserializer().ACCEPT == ("application/jsonlines",)
    assert StringDeserializer().ACCEPT == ("application/json",)
    assert JSONDeserializer().deserialize(Body(b'{"a": [1, 2]}'), "application/json") == {"a": [1, 2]}
    assert CSVDeserializer().deserialize(Body(b"1,2\n3,4\n"), "text/csv") == [["1", "2"], ["3", "4"]]
    assert StringDeserializer().deserialize(Body("héllo".encode()), "text/plain") == "héllo"
    assert BytesDeserializer().deserialize(Body(b"\x01"), "application/octet-stream") == b"\x01"
    assert JSONLinesDeserializer().deserialize(Body(b'{"a": 1}\n[2]\n'), "application/jsonlines") == [{"a": 1}, [2]]
    stream, kind = StreamDeserializer().deserialize(Body(b"abc\ndef"), "text/plain")
    assert kind == "text/plain" and list(stream.iter_lines()) == [b"abc", b"def"]


def test_numpy_deserializer_reads_npy_csv_and_json():
    buf = io.BytesIO()
    np.save(buf, np.array([[1, 2], [3, 4]]))
    d = NumpyDeserializer()
    assert d.deserialize(Body(buf.getvalue()), "application/x-npy").tolist() == [[1, 2], [3, 4]]
    assert d.deserialize(Body(b"1,2\n3,4"), "text/csv").tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert d.deserialize(Body(json.dumps([1, 2]).encode()), "application/json").tolist() == [1, 2]
    with pytest.raises(ValueError, match="cannot read content type image/png"):
        d.deserialize(Body(b""), "image/png")
