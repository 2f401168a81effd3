"""``sagemaker.deserializers``: turn an endpoint's response into a Python object.

Names, arguments, defaults and behaviour follow the SageMaker Python SDK v2 (``sagemaker.base_deserializers``).
``deserialize(stream, content_type)`` gets a readable stream of the response body (as the SDK passes
botocore's ``StreamingBody``) and closes it, except :class:`StreamDeserializer`, which hands it over.
"""

from __future__ import annotations

import abc
import codecs
import csv
import io
import json
from typing import Any

__all__ = [
    "BaseDeserializer",
    "BytesDeserializer",
    "CSVDeserializer",
    "JSONDeserializer",
    "JSONLinesDeserializer",
    "NumpyDeserializer",
    "PandasDeserializer",
    "SimpleBaseDeserializer",
    "StreamDeserializer",
    "StringDeserializer",
]


class BaseDeserializer(abc.ABC):
    """Abstract base: ``deserialize(stream, content_type)`` and the ``ACCEPT`` types it reads."""

    @abc.abstractmethod
    def deserialize(self, stream: Any, content_type: str) -> Any:
        """Deserialize data received from an endpoint."""

    @property
    @abc.abstractmethod
    def ACCEPT(self) -> tuple[str, ...]:
        """The content types expected from the endpoint."""


class SimpleBaseDeserializer(BaseDeserializer):
    """A deserializer whose Accept is set at construction: one MIME type or a tuple of them."""

    def __init__(self, accept: str | tuple[str, ...] = "*/*") -> None:
        self.accept = accept

    @property
    def ACCEPT(self) -> tuple[str, ...]:
        return (self.accept,) if isinstance(self.accept, str) else tuple(self.accept)


class StringDeserializer(SimpleBaseDeserializer):
    """The body decoded as text."""

    def __init__(self, encoding: str = "UTF-8", accept: str | tuple[str, ...] = "application/json") -> None:
        super().__init__(accept=accept)
        self.encoding = encoding

    def deserialize(self, stream: Any, content_type: str) -> str:
        try:
            return stream.read().decode(self.encoding)
        finally:
            stream.close()


class BytesDeserializer(SimpleBaseDeserializer):
    """The body as bytes."""

    def deserialize(self, stream: Any, content_type: str) -> bytes:
        try:
            return stream.read()
        finally:
            stream.close()


class CSVDeserializer(SimpleBaseDeserializer):
    """CSV text as a list of rows, each a list of strings."""

    def __init__(self, encoding: str = "utf-8", accept: str | tuple[str, ...] = "text/csv") -> None:
        super().__init__(accept=accept)
        self.encoding = encoding

    def deserialize(self, stream: Any, content_type: str) -> list[list[str]]:
        try:
            return list(csv.reader(stream.read().decode(self.encoding).splitlines()))
        finally:
            stream.close()


class StreamDeserializer(SimpleBaseDeserializer):
    """``(stream, content_type)``: the caller reads the stream (and closes it)."""

    def deserialize(self, stream: Any, content_type: str) -> tuple[Any, str]:
        return stream, content_type


class NumpyDeserializer(SimpleBaseDeserializer):
    """``.npy``, CSV or JSON as a numpy array."""

    def __init__(self, dtype: Any = None, accept: str | tuple[str, ...] = "application/x-npy",
                 allow_pickle: bool = True) -> None:
        super().__init__(accept=accept)
        self.dtype = dtype
        self.allow_pickle = allow_pickle

    def deserialize(self, stream: Any, content_type: str) -> Any:
        import numpy as np

        try:
            if content_type == "text/csv":
                return np.genfromtxt(codecs.getreader("utf-8")(stream), delimiter=",", dtype=self.dtype)
            if content_type == "application/json":
                return np.array(json.load(codecs.getreader("utf-8")(stream)), dtype=self.dtype)
            if content_type == "application/x-npy":
                return np.load(io.BytesIO(stream.read()), allow_pickle=self.allow_pickle)
        finally:
            stream.close()
        raise ValueError(f"NumpyDeserializer cannot read content type {content_type}.")


class JSONDeserializer(SimpleBaseDeserializer):
    """JSON as the Python object it encodes."""

    def __init__(self, accept: str | tuple[str, ...] = "application/json") -> None:
        super().__init__(accept=accept)

    def deserialize(self, stream: Any, content_type: str) -> Any:
        try:
            return json.load(codecs.getreader("utf-8")(stream))
        finally:
            stream.close()


class PandasDeserializer(SimpleBaseDeserializer):
    """CSV or JSON (``columns`` orient) as a pandas DataFrame."""

    def __init__(self, accept: str | tuple[str, ...] = ("text/csv", "application/json")) -> None:
        super().__init__(accept=accept)

    def deserialize(self, stream: Any, content_type: str) -> Any:
        import pandas

        if content_type == "text/csv":
            return pandas.read_csv(stream)
        if content_type == "application/json":
            return pandas.read_json(stream)
        raise ValueError(f"PandasDeserializer cannot read content type {content_type}.")


class JSONLinesDeserializer(SimpleBaseDeserializer):
    """JSON Lines as a list of objects."""

    def __init__(self, accept: str | tuple[str, ...] = "application/jsonlines") -> None:
        super().__init__(accept=accept)

    def deserialize(self, stream: Any, content_type: str) -> list[Any]:
        try:
            body = stream.read().decode("utf-8")
            return [json.loads(line) for line in body.rstrip().split("\n")]
        finally:
            stream.close()
