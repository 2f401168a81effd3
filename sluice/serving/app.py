"""The model server's HTTP surface: the container contract, plus the SageMaker Runtime wire path.

Routes:

``GET /ping``
    200 with an empty body once the model is loaded; 503 while it loads; 500 with the reason if it could
    not be loaded (permanent: the server does not retry, so a caller can stop waiting at once).
``POST /invocations``
    the body and headers go through the handlers (:class:`sluice.serving.handlers.InferenceService`) on a
    pool of ``SAGEMAKER_MODEL_SERVER_WORKERS`` threads. Handler errors answer their status (400, 415, 500)
    with the error text; a handler running past ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` answers 504; a body
    above ``SAGEMAKER_MAX_PAYLOAD_IN_MB`` answers 413 without reaching the handlers.
``GET /execution-parameters``
    ``{"MaxConcurrentTransforms": <workers>, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": <limit>}``.
``POST /endpoints/{name}/invocations``
    what ``boto3.client("sagemaker-runtime", endpoint_url=...).invoke_endpoint(...)`` sends (SigV4 headers
    are ignored). Success returns the body with ``Content-Type`` and ``x-Amzn-Invoked-Production-Variant:
    AllTraffic``; a handler error becomes a ``ModelError`` (HTTP 424, ``OriginalStatusCode``,
    ``OriginalMessage``) so boto3 raises ``ModelError`` with the message; an oversized body or another
    endpoint's name is a ``ValidationError``.

``X-Amzn-SageMaker-Custom-Attributes`` and the other request headers reach the handlers' ``context``; a
``X-Amzn-SageMaker-Custom-Attributes`` response header set by a handler (``context.set_response_header``)
is returned.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from sluice.config import ACCOUNT_ID
from sluice.serving.handlers import Headers, InferenceError, InferenceService, Invocation

__all__ = ["ServerSettings", "create_app"]

log = logging.getLogger("sluice.serving")

VARIANT = "AllTraffic"
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
#: Request headers that belong to the transport or to AWS request signing, not to the model.
_DROPPED = frozenset({
    b"authorization", b"x-amz-date", b"x-amz-security-token", b"x-amz-content-sha256", b"amz-sdk-invocation-id",
    b"amz-sdk-request", b"host", b"connection", b"content-length", b"accept-encoding", b"user-agent",
    b"expect", b"transfer-encoding",
})


@dataclass(frozen=True)
class ServerSettings:
    """What the HTTP layer needs to know; :mod:`sluice.serving.worker` builds it from the environment."""

    workers: int = 1
    timeout: float = 60.0
    max_payload_mb: float = 6.0
    endpoint_name: str | None = None  # the Runtime path refuses other names; None accepts any
    log_hint: str | None = None  # where the server's log is, for error messages
    region: str = "us-east-1"
    account_id: str = ACCOUNT_ID

    @property
    def max_payload_bytes(self) -> int | None:
        return int(self.max_payload_mb * 1024 * 1024) if self.max_payload_mb > 0 else None


class _TooLarge(Exception):
    pass


#: Bytes of an oversized body read (and dropped) before answering 413; beyond it the connection is cut.
_DRAIN_LIMIT = 256 * 1024 * 1024


Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _headers(scope: Scope) -> Headers:
    return Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"] if k not in _DROPPED)


async def _read_body(scope: Scope, receive: Receive, limit: int | None) -> bytes:
    """The whole request body; :class:`_TooLarge` past ``limit``, raised only once the client has sent it all
    (up to :data:`_DRAIN_LIMIT`), since a client still sending cannot read the 413 answer."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            raise ConnectionAbortedError("the client disconnected before sending its whole request")
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is None or size <= limit:
            chunks.append(chunk)
        else:
            chunks.clear()
            if size > _DRAIN_LIMIT:
                raise _TooLarge(size)
        if not message.get("more_body", False):
            if limit is not None and size > limit:
                raise _TooLarge(size)
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


def _text(message: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    return f"{message}\n".encode(), [(b"content-type", b"text/plain; charset=utf-8")]


class _Endpoint:
    """A plain ASGI endpoint: starlette routes to it, and it reads and writes ASGI messages itself (a
    ``Request``/``Response`` pair per call costs as much as the handler call it wraps)."""

    def __init__(self, fn: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.fn = fn

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.fn(scope, receive, send)


def create_app(service: InferenceService, settings: ServerSettings, pool: Executor | None = None) -> Starlette:
    """The ASGI app serving ``service``; handler calls run on ``pool`` (default: ``settings.workers`` threads)."""
    executor = pool or ThreadPoolExecutor(max_workers=max(1, settings.workers), thread_name_prefix="handler")
    limit = settings.max_payload_bytes
    too_large = (f"The request body is larger than the model server accepts: SAGEMAKER_MAX_PAYLOAD_IN_MB is "
                 f"{settings.max_payload_mb:g}. Send smaller requests, or raise the limit in the model's "
                 "environment.")
    exec_params = json.dumps({"MaxConcurrentTransforms": max(1, settings.workers), "BatchStrategy": "MULTI_RECORD",
                              "MaxPayloadInMB": int(settings.max_payload_mb)}).encode()
    timed_out = (f"the handlers did not answer within SAGEMAKER_MODEL_SERVER_TIMEOUT={settings.timeout:g} s; the "
                 "request was abandoned (its thread runs on). Raise the timeout or make the handler faster.")

    async def run(body: bytes, headers: Headers) -> Invocation:
        """``service.invoke`` on a handler thread, answered through the loop; at most ``settings.timeout`` s."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Invocation] = loop.create_future()

        def settle(done: Future[Invocation]) -> None:
            if not waiter.done():
                exc = done.exception()
                if exc is not None:
                    waiter.set_exception(exc)
                else:
                    waiter.set_result(done.result())

        executor.submit(service.invoke, body, headers).add_done_callback(
            lambda done: loop.call_soon_threadsafe(settle, done))
        timer = loop.call_later(settings.timeout, lambda: waiter.done() or waiter.set_exception(
            InferenceError(timed_out, 504)))
        try:
            return await waiter
        finally:
            timer.cancel()

    async def invoke(scope: Scope, receive: Receive) -> Invocation:
        """The request through the handlers; every failure is an :class:`InferenceError` with its status."""
        try:
            body = await _read_body(scope, receive, limit)
        except _TooLarge:
            raise InferenceError(too_large, 413) from None
        try:
            return await run(body, _headers(scope))
        except InferenceError as exc:
            if exc.status >= 500:
                log.error("invocation failed (%d): %s", exc.status, exc)
            else:
                log.warning("invocation refused (%d): %s", exc.status, exc)
            raise
        except Exception as exc:
            log.error("invocation failed: the handlers raised %s", type(exc).__name__,
                      exc_info=(type(exc), exc, exc.__traceback__))
            raise InferenceError(f"{type(exc).__name__}: {exc}", 500) from exc

    async def ping(scope: Scope, receive: Receive, send: Send) -> None:
        if service.ready:
            await _respond(send, 200, b"", [])
        elif service.loading:
            await _respond(send, 503, *_text("the model is loading"))
        else:
            await _respond(send, 500, *_text(f"the model could not be loaded: {service.error}"))

    async def execution_parameters(scope: Scope, receive: Receive, send: Send) -> None:
        await _respond(send, 200, exec_params, [(b"content-type", b"application/json")])

    async def invocations(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            result = await invoke(scope, receive)
        except ConnectionAbortedError:
            return  # nobody to answer
        except InferenceError as exc:
            await _respond(send, exc.status, *_text(str(exc)))
            return
        headers = [(b"content-type", result.content_type.encode("latin-1"))]
        headers += [(k.encode("latin-1"), str(v).encode("latin-1")) for k, v in result.headers.items()]
        await _respond(send, result.status, result.body, headers)

    async def runtime_invocations(scope: Scope, receive: Receive, send: Send) -> None:
        name = scope["path_params"]["name"]
        if settings.endpoint_name is not None and name != settings.endpoint_name:
            await _aws_error(send, "ValidationError", 400,
                             f"Endpoint {name} of account {settings.account_id} not found.")
            return
        try:
            result = await invoke(scope, receive)
        except ConnectionAbortedError:
            return
        except InferenceError as exc:
            if exc.status == 413:
                await _aws_error(send, "ValidationError", 413, str(exc))
            else:
                await _model_error(send, exc.status, str(exc), settings)
            return
        if result.status >= 400:
            await _model_error(send, result.status, result.body.decode("utf-8", "replace"), settings)
            return
        headers = [(b"content-type", result.content_type.encode("latin-1")), _VARIANT_HEADER]
        attributes = next((v for k, v in result.headers.items() if k.lower() == CUSTOM_ATTRIBUTES.lower()), None)
        if attributes is not None:
            headers.append((CUSTOM_ATTRIBUTES.encode(), str(attributes).encode("latin-1")))
        await _respond(send, 200, result.body, headers)

    routes: list[tuple[str, Callable[[Scope, Receive, Send], Awaitable[None]], list[str]]] = [
        ("/ping", ping, ["GET"]),
        ("/invocations", invocations, ["POST"]),
        ("/execution-parameters", execution_parameters, ["GET"]),
        ("/endpoints/{name}/invocations", runtime_invocations, ["POST"]),
    ]
    return Starlette(routes=[Route(path, _Endpoint(fn), methods=methods) for path, fn, methods in routes])


_VARIANT_HEADER = (b"x-Amzn-Invoked-Production-Variant", VARIANT.encode())


async def _aws_error(send: Send, code: str, status: int, message: str, **extra: Any) -> None:
    """An error as the SageMaker Runtime sends it (rest-json): botocore reads the code from the header."""
    body = json.dumps({"ErrorCode": code, "message": message, **extra}).encode()
    await _respond(send, status, body, [(b"content-type", b"application/json"),
                                        (b"x-amzn-ErrorType", f"{code}:".encode())])


async def _model_error(send: Send, status: int, text: str, settings: ServerSettings) -> None:
    """A ``ModelError`` (HTTP 424), worded as the service words it, pointing at the server's log."""
    kind = "server" if status >= 500 else "client"
    text = text.strip()
    where = f" See {settings.log_hint} for the model server's log." if settings.log_hint else ""
    message = f'Received {kind} error ({status}) from primary with message "{text}".{where}'
    group = f"/aws/sagemaker/Endpoints/{settings.endpoint_name or 'local'}"
    await _aws_error(send, "ModelError", 424, message, OriginalStatusCode=status, OriginalMessage=text,
                     LogStreamArn=f"arn:aws:logs:{settings.region}:{settings.account_id}:log-group:{group}")
