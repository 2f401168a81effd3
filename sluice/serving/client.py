"""InvokeEndpoint against a local endpoint: the SageMaker Runtime wire path over kept-alive HTTP/1.1.

Why not boto3: a signed botocore call costs about a millisecond of client work; a local endpoint answers in
a fraction of that. This client speaks the same wire protocol (``POST /endpoints/{name}/invocations`` with
the Runtime's headers) with the standard library's ``http.client``, keeping one connection per thread, so
a prediction costs one loopback round trip. Errors come back Runtime-shaped and are raised as sluice
errors: :class:`ModelError` (the model answered an error), :class:`~sluice.errors.SpecError` (a
``ValidationError``), :class:`~sluice.errors.ExecutionError` (the endpoint is unreachable or failed).

A connection stays with the instance the kernel gave it to; requests from several threads (one connection
each) spread over an endpoint's instances.
"""

from __future__ import annotations

import http.client
import io
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sluice.errors import ExecutionError, SpecError

__all__ = ["Body", "InvokeResponse", "ModelError", "RuntimeClient"]

#: ``invoke_endpoint`` argument → request header (botocore's SageMaker Runtime model).
HEADERS = {
    "ContentType": "Content-Type",
    "Accept": "Accept",
    "CustomAttributes": "X-Amzn-SageMaker-Custom-Attributes",
    "TargetModel": "X-Amzn-SageMaker-Target-Model",
    "TargetVariant": "X-Amzn-SageMaker-Target-Variant",
    "TargetContainerHostname": "X-Amzn-SageMaker-Target-Container-Hostname",
    "InferenceId": "X-Amzn-SageMaker-Inference-Id",
    "EnableExplanations": "X-Amzn-SageMaker-Enable-Explanations",
    "InferenceComponentName": "X-Amzn-SageMaker-Inference-Component",
    "SessionId": "X-Amzn-SageMaker-Session-Id",
}


class ModelError(ExecutionError):
    """The model answered an error: the Runtime's ``ModelError``, with the model's own status and message."""

    def __init__(self, message: str, original_status_code: int | None = None, original_message: str | None = None,
                 log_stream_arn: str | None = None) -> None:
        super().__init__(message)
        self.args = (message, original_status_code, original_message, log_stream_arn)
        self.original_status_code = original_status_code
        self.original_message = original_message
        self.log_stream_arn = log_stream_arn


class Body(io.BytesIO):
    """A response body with the reading methods of botocore's ``StreamingBody``."""

    def iter_chunks(self, chunk_size: int = 1024) -> Iterator[bytes]:
        while chunk := self.read(chunk_size):
            yield chunk

    def iter_lines(self, chunk_size: int = 1024, keepends: bool = False) -> Iterator[bytes]:
        yield from self.getvalue()[self.tell():].splitlines(keepends)
        self.seek(0, io.SEEK_END)


@dataclass(frozen=True)
class InvokeResponse:
    """What ``invoke_endpoint`` returns, minus ``ResponseMetadata``."""

    body: bytes
    content_type: str
    invoked_production_variant: str | None = None
    custom_attributes: str | None = None


def _to_bytes(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    if hasattr(body, "read"):
        return _to_bytes(body.read())
    raise TypeError(f"the request body must be bytes, str or a file-like object, not {type(body).__name__}; "
                    "pass a serializer (e.g. CSVSerializer()) to the Predictor to turn data into bytes.")


class RuntimeClient:
    """InvokeEndpoint for one endpoint; ``resolve`` returns its base URL (asked again if the endpoint moved)."""

    def __init__(self, endpoint_name: str, resolve: Callable[[], str]) -> None:
        self.endpoint_name = endpoint_name
        self._resolve = resolve
        self._local = threading.local()
        self._address: tuple[str, int] | None = None
        self._path = f"/endpoints/{urllib.parse.quote(endpoint_name, safe='')}/invocations"

    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and not fresh:
            return conn
        if conn is not None:
            conn.close()
        if self._address is None or fresh:
            url = urllib.parse.urlsplit(self._resolve())
            self._address = (url.hostname or "127.0.0.1", url.port or 80)
        conn = http.client.HTTPConnection(*self._address, timeout=None)
        self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def invoke(self, body: Any, **args: Any) -> InvokeResponse:
        """``invoke_endpoint(Body=body, **args)`` with args named as boto3 names them."""
        data = _to_bytes(body)
        headers = {"Content-Length": str(len(data))}
        for name, value in args.items():
            if value is None or name == "EndpointName":
                continue
            header = HEADERS.get(name)
            if header is None:
                raise SpecError(f"invoke_endpoint got an unknown argument {name!r}; known: {', '.join(HEADERS)}.")
            headers[header] = str(value)
        status, reply, content = self._round_trip(data, headers)
        if status == 200:
            return InvokeResponse(content, reply.get("content-type", "application/octet-stream"),
                                  reply.get("x-amzn-invoked-production-variant"),
                                  reply.get("x-amzn-sagemaker-custom-attributes"))
        raise _error(status, reply, content, self.endpoint_name)

    def _round_trip(self, data: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """One request; a kept-alive connection the server has closed is reopened once, and a refused one
        is retried once at a freshly resolved address (the endpoint may have been deployed again)."""
        for attempt in (0, 1):
            conn = self._connection(fresh=attempt > 0)
            reused = conn.sock is not None
            try:
                conn.request("POST", self._path, body=data, headers=headers)
                answer = conn.getresponse()
                content = answer.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                conn.close()
                if attempt == 0 and reused:
                    continue
                raise ExecutionError(f"the connection to endpoint {self.endpoint_name} broke ({exc}); "
                                     "`sluice endpoints describe` shows whether it still runs.") from exc
            except OSError as exc:
                conn.close()
                if attempt == 0:
                    continue
                raise ExecutionError(f"endpoint {self.endpoint_name} cannot be reached at "
                                     f"{self._address[0] if self._address else '?'}:"
                                     f"{self._address[1] if self._address else '?'} ({exc}); "
                                     "`sluice endpoints describe` shows its status.") from exc
            if answer.will_close:
                conn.close()
            return answer.status, {k.lower(): v for k, v in answer.getheaders()}, content
        raise AssertionError("unreachable")


def _error(status: int, headers: dict[str, str], content: bytes, endpoint: str) -> Exception:
    try:
        body = json.loads(content)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = (headers.get("x-amzn-errortype") or body.get("__type") or body.get("ErrorCode") or "").split(":")[0]
    message = body.get("message") or body.get("Message") or content.decode("utf-8", "replace").strip()
    if code == "ModelError":
        return ModelError(message, body.get("OriginalStatusCode"), body.get("OriginalMessage"),
                          body.get("LogStreamArn"))
    if code == "ValidationError":
        return SpecError(message)
    return ExecutionError(f"endpoint {endpoint} answered {status} {code or ''}: {message}".replace("  ", " "))
