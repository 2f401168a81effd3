"""``sagemaker_xgboost_container.encoder``: request bodies to ``xgboost.DMatrix``, as the XGBoost image does.

Inference code written for the SageMaker XGBoost image imports these (the SageMaker Pipelines local-mode
blog's ``inference.py``: ``xgb_encoders.libsvm_to_dmatrix(request_body)``). Each behaves as the image's own
(``aws/sagemaker-xgboost-container``, ``src/sagemaker_xgboost_container/encoder.py``):

- :func:`csv_to_dmatrix` sniffs the delimiter from the first line, reads empty fields as NaN and converts
  every field with ``numpy``'s ``astype(dtype)`` (float64 by default); there is no label column. Like the
  image's, it expects the body without a trailing newline.
- :func:`libsvm_to_dmatrix` reads ``<label> <index>:<value> ...`` lines, indices counted from 0, the first
  field being the label, as ``xgboost.DMatrix`` reads a LIBSVM file.
- :func:`json_to_jsonlines` turns ``{"key": [a, b]}`` into one JSON line per element.
- :func:`decode` picks one of the first two by content type and raises :class:`UnsupportedFormatError`
  for any other.

RecordIO-Protobuf needs the image's ``mlio`` library, which sluice does not ship: decoding it raises
:class:`UnsupportedFormatError` saying so.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from typing import Any

import numpy as np
import xgboost as xgb

from .constants import xgb_content_types

__all__ = ["UnsupportedFormatError", "csv_to_dmatrix", "decode", "json_to_jsonlines", "libsvm_to_dmatrix",
           "recordio_protobuf_to_dmatrix"]

CSV = "text/csv"


class UnsupportedFormatError(ValueError):
    """A content type the container cannot decode (``sagemaker_containers._errors.UnsupportedFormatError``)."""

    def __init__(self, content_type: str, **kwargs: Any) -> None:
        self.content_type = content_type
        super().__init__(f"Content type {content_type} is not supported by this framework.")


def _clean_csv_string(csv_string: str, delimiter: str) -> list[str]:
    return ["nan" if x == "" else x for x in csv_string.split(delimiter)]


def csv_to_dmatrix(input: str | bytes, dtype: Any = None) -> xgb.DMatrix:
    """A CSV body (``str`` or UTF-8 ``bytes``, without a trailing newline) as a DMatrix of its fields."""
    csv_string = input.decode() if isinstance(input, bytes) else input
    sniff_delimiter = csv.Sniffer().sniff(csv_string.split("\n")[0][:512]).delimiter
    delimiter = "," if sniff_delimiter.isalnum() else sniff_delimiter
    logging.info("Determined delimiter of CSV input is '%s'", delimiter)
    np_payload = np.array([_clean_csv_string(line, delimiter) for line in csv_string.split("\n")]).astype(dtype)
    return xgb.DMatrix(np_payload)


def libsvm_to_dmatrix(string_like: str | bytes) -> xgb.DMatrix:
    """A LIBSVM body (``str`` or ``bytes``) as a DMatrix with its labels."""
    from sklearn.datasets import load_svmlight_file

    data = string_like.encode() if isinstance(string_like, str) else bytes(string_like)
    features, labels = load_svmlight_file(io.BytesIO(data), zero_based=True)
    return xgb.DMatrix(features, label=labels)


def recordio_protobuf_to_dmatrix(string_like: bytes) -> xgb.DMatrix:
    """Refused: the image decodes RecordIO-Protobuf with ``mlio``, which sluice does not ship."""
    raise UnsupportedFormatError(xgb_content_types.X_RECORDIO_PROTOBUF)


_dmatrix_decoders_map = {
    CSV: csv_to_dmatrix,
    xgb_content_types.LIBSVM: libsvm_to_dmatrix,
    xgb_content_types.X_LIBSVM: libsvm_to_dmatrix,
    xgb_content_types.X_RECORDIO_PROTOBUF: recordio_protobuf_to_dmatrix,
}


def json_to_jsonlines(json_data: dict | str | bytes) -> bytes:
    """``{"predictions": [a, b]}`` (a dict or its JSON) as JSON Lines, one element per line."""
    resp_dict = json_data if isinstance(json_data, dict) else json.loads(json_data)
    if len(resp_dict.keys()) != 1:
        raise ValueError("JSON response is not compatible for conversion to jsonlines.")
    bio = io.BytesIO()
    for value in resp_dict.values():
        for entry in value:
            bio.write(bytes(json.dumps(entry) + "\n", "UTF-8"))
    return bio.getvalue()


def decode(obj: str | bytes, content_type: str) -> xgb.DMatrix:
    """``obj`` as a DMatrix, decoded by its content type (parameters such as ``; charset=utf-8`` ignored)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    decoder = _dmatrix_decoders_map.get(media_type)
    if decoder is None:
        raise UnsupportedFormatError(media_type)
    return decoder(obj)
