"""``sagemaker.serializers``: turn a Python object into a request body for :class:`sluice.predictor.Predictor`.

Names, arguments, defaults and behaviour follow the SageMaker Python SDK v2 (``sagemaker.base_serializers``).
numpy and pandas are never imported here: an array or DataFrame can only be passed if its library is
already loaded, so the check looks in ``sys.modules``.
"""

from __future__ import annotations

import abc
import csv
import io
import json
import sys
from collections.abc import Iterable
from typing import Any

__all__ = [
    "BaseSerializer",
    "CSVSerializer",
    "IdentitySerializer",
    "JSONLinesSerializer",
    "JSONSerializer",
    "NumpySerializer",
    "SimpleBaseSerializer",
    "StringSerializer",
]


def _is_ndarray(data: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(data, np.ndarray)


def _is_dataframe(data: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(data, pd.DataFrame)


class BaseSerializer(abc.ABC):
    """Abstract base: ``serialize(data)`` and the ``CONTENT_TYPE`` it produces."""

    @abc.abstractmethod
    def serialize(self, data: Any) -> Any:
        """Serialize data into the media type given by ``CONTENT_TYPE``."""

    @property
    @abc.abstractmethod
    def CONTENT_TYPE(self) -> str:
        """The MIME type of the data sent to the endpoint."""


class SimpleBaseSerializer(BaseSerializer):
    """A serializer whose content type is set at construction (default ``application/json``)."""

    def __init__(self, content_type: str = "application/json") -> None:
        if not isinstance(content_type, str):
            raise ValueError(
                "content_type must be a string specifying the MIME type of the data sent in requests: e.g. "
                f"'application/json', 'text/csv', etc. Got {content_type}"
            )
        self.content_type = content_type

    @property
    def CONTENT_TYPE(self) -> str:
        return self.content_type


class CSVSerializer(SimpleBaseSerializer):
    """Rows of numbers (a list, a list of lists, a numpy array, a DataFrame, a file) as CSV text."""

    def __init__(self, content_type: str = "text/csv") -> None:
        super().__init__(content_type=content_type)

    def serialize(self, data: Any) -> Any:
        if hasattr(data, "read"):
            return data.read()
        if _is_dataframe(data):
            return data.to_csv(header=False, index=False)
        is_mutable_sequence_like = self._is_sequence_like(data) and hasattr(data, "__setitem__")
        has_multiple_rows = len(data) > 0 and self._is_sequence_like(data[0])
        if is_mutable_sequence_like and has_multiple_rows:
            return "\n".join(self._serialize_row(row) for row in data)
        return self._serialize_row(data)

    def _serialize_row(self, data: Any) -> str:
        if isinstance(data, str):
            return data
        if _is_ndarray(data):
            data = data.flatten()
        if hasattr(data, "__len__"):
            if len(data) == 0:
                raise ValueError("Cannot serialize empty array")
            buffer = io.StringIO()
            csv.writer(buffer, delimiter=",").writerow(data)
            return buffer.getvalue().rstrip("\r\n")
        raise ValueError(f"Unable to handle input format: {type(data)}")

    @staticmethod
    def _is_sequence_like(data: Any) -> bool:
        return hasattr(data, "__iter__") and hasattr(data, "__getitem__")


class NumpySerializer(SimpleBaseSerializer):
    """An array (or list, or anything numpy can make an array of) in the ``.npy`` format."""

    def __init__(self, dtype: Any = None, content_type: str = "application/x-npy") -> None:
        super().__init__(content_type=content_type)
        self.dtype = dtype

    def serialize(self, data: Any) -> Any:
        import numpy as np

        if isinstance(data, np.ndarray):
            if data.size == 0:
                raise ValueError("Cannot serialize empty array.")
            return self._serialize_array(data)
        if isinstance(data, list):
            if len(data) == 0:
                raise ValueError("Cannot serialize empty array.")
            return self._serialize_array(np.array(data, self.dtype))
        if hasattr(data, "read"):  # files and buffers, assumed to hold .npy data
            return data.read()
        return self._serialize_array(np.array(data))

    @staticmethod
    def _serialize_array(array: Any) -> bytes:
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue()


class JSONSerializer(SimpleBaseSerializer):
    """Any JSON-able object as JSON; arrays (and arrays as dict values) as nested lists."""

    def serialize(self, data: Any) -> Any:
        if isinstance(data, dict):
            return json.dumps({k: v.tolist() if _is_ndarray(v) else v for k, v in data.items()})
        if hasattr(data, "read"):
            return data.read()
        if _is_ndarray(data):
            return json.dumps(data.tolist())
        return json.dumps(data)


class IdentitySerializer(SimpleBaseSerializer):
    """The data as it is (bytes, usually), sent as ``application/octet-stream`` unless told otherwise."""

    def __init__(self, content_type: str = "application/octet-stream") -> None:
        super().__init__(content_type=content_type)

    def serialize(self, data: Any) -> Any:
        return data


class JSONLinesSerializer(SimpleBaseSerializer):
    """An iterable of JSON-able objects as JSON Lines (one per line); a str or a file as it is."""

    def __init__(self, content_type: str = "application/jsonlines") -> None:
        super().__init__(content_type=content_type)

    def serialize(self, data: Any) -> Any:
        if isinstance(data, str):
            return data
        if hasattr(data, "read"):
            return data.read()
        if isinstance(data, Iterable):
            return "\n".join(json.dumps(element) for element in data)
        raise ValueError(f"Object of type {type(data)} is not JSON Lines serializable.")


class StringSerializer(SimpleBaseSerializer):
    """A str as UTF-8 bytes (``text/plain``)."""

    def __init__(self, content_type: str = "text/plain") -> None:
        super().__init__(content_type=content_type)

    def serialize(self, data: Any) -> Any:
        if isinstance(data, str):
            return data.encode("utf-8")
        raise ValueError(f"Object of type {type(data)} is not String serializable.")
