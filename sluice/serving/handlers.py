"""The ``inference.py`` handler contract of the SageMaker inference toolkit, and one request through it.

Why a module of its own: the contract is what user code depends on, and it is subtle enough to pin in one
place (and to test without a server). It follows ``sagemaker_inference.transformer.Transformer``:

- the handler module is ``SAGEMAKER_PROGRAM`` (default ``inference.py``) in ``SAGEMAKER_SUBMIT_DIRECTORY``
  (default ``<model_dir>/code``), imported with that directory first on ``sys.path``;
- it may define ``model_fn(model_dir)``, ``input_fn(input_data, content_type)``,
  ``predict_fn(data, model)``, ``output_fn(prediction, accept)``, or instead of the last three a single
  ``transform_fn(model, input_data, content_type, accept)``; mixing ``transform_fn`` with any of them is an
  error. ``pre_model_fn(model_dir)`` and ``model_warmup_fn(model_dir, model)`` are optional hooks;
- any handler may take one extra trailing ``context`` argument (detected from its arity, once, at load);
  the context carries ``system_properties`` (``model_dir``, ``gpu_id``) and ``request_processor``, whose
  first element holds the request headers (``get_request_properties()``, or ``.headers``);
- handlers left out fall back to :mod:`sluice.serving.defaults`;
- bodies of UTF-8 content types (``application/json``, ``text/csv``, or any ``charset=utf-8``) reach
  ``input_fn`` as ``str``; a missing or ``*/*`` Accept becomes ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``
  (default ``application/json``);
- ``transform_fn`` (and so ``output_fn``) may return ``(body, content_type)``; a body that is not bytes or
  str is JSON-encoded, as the multi-model server does.

Errors: :class:`HandlerError` (the module breaks the contract; found at load, so the server never becomes
healthy), :class:`ModelLoadError` (loading failed), :class:`InferenceError` (one request failed, with the
HTTP status to answer: 400, 415, 500...).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.errors import SluiceError, SpecError

__all__ = [
    "ANY",
    "DEFAULT_ACCEPT",
    "DEFAULT_PROGRAM",
    "Context",
    "HandlerError",
    "Handlers",
    "Headers",
    "InferenceError",
    "InferenceService",
    "Invocation",
    "ModelLoadError",
    "RequestProcessor",
    "UnsupportedFormatError",
    "load_handlers",
]

log = logging.getLogger("sluice.serving")

DEFAULT_PROGRAM = "inference.py"
DEFAULT_ACCEPT = "application/json"
ANY = "*/*"
#: Content types whose body reaches ``input_fn`` decoded (the toolkit's ``UTF8_TYPES``).
UTF8_TYPES = frozenset({"application/json", "text/csv"})

_PIPELINE = ("input_fn", "predict_fn", "output_fn")
_ARGS = {
    "model_fn": ("model_dir",),
    "input_fn": ("input_data", "content_type"),
    "predict_fn": ("data", "model"),
    "output_fn": ("prediction", "accept"),
    "transform_fn": ("model", "input_data", "content_type", "accept"),
    "pre_model_fn": ("model_dir",),
    "model_warmup_fn": ("model_dir", "model"),
}


# ---- errors ---------------------------------------------------------------------------------------
class HandlerError(SpecError):
    """The handler module breaks the contract (mixed handlers, wrong arity, missing program)."""


class ModelLoadError(SluiceError):
    """The model could not be loaded: no model file sluice recognises and no ``model_fn``, or ``model_fn`` failed."""


class InferenceError(SluiceError):
    """One request failed; ``status`` is the HTTP status the model server answers with."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message, status)
        self.status = status

    def __str__(self) -> str:
        return str(self.args[0])


class UnsupportedFormatError(InferenceError):
    """A content type or Accept the handlers cannot read or write (HTTP 415)."""

    def __init__(self, message: str, status: int = 415) -> None:
        super().__init__(message, status)


# ---- headers and context --------------------------------------------------------------------------
_CANONICAL = {
    name.lower(): name
    for name in (
        "Content-Type", "Accept", "Content-Length", "X-Amzn-SageMaker-Custom-Attributes",
        "X-Amzn-SageMaker-Target-Model", "X-Amzn-SageMaker-Target-Variant", "X-Amzn-SageMaker-Inference-Id",
        "X-Amzn-SageMaker-Target-Container-Hostname", "X-Amzn-SageMaker-Enable-Explanations",
        "X-Amzn-SageMaker-Inference-Component", "X-Amzn-SageMaker-Session-Id",
    )
}


def _canonical(name: str) -> str:
    return _CANONICAL.get(name.lower()) or "-".join(part.capitalize() for part in name.split("-"))


class Headers(dict[str, str]):
    """Request headers under their canonical names (``Content-Type``, ``X-Amzn-SageMaker-Custom-Attributes``),
    looked up case-insensitively: handlers written for the toolkit read them with either spelling."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        for key, value in items:
            self[key] = value

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(_canonical(key), value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(_canonical(key))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(_canonical(key))

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(_canonical(key), default)


class RequestProcessor:
    """One request's headers, shaped like the multi-model server's ``RequestProcessor``."""

    def __init__(self, headers: Headers) -> None:
        self.headers = headers
        self.response_headers: dict[str, str] = {}
        self.status: tuple[int, str] | None = None

    def get_request_properties(self) -> Headers:
        return self.headers

    def get_request_property(self, key: str) -> str | None:
        return self.headers.get(key)

    def add_response_property(self, key: str, value: str) -> None:
        self.response_headers[key] = value

    def get_response_headers(self) -> dict[str, str]:
        return self.response_headers

    def report_status(self, code: int, reason: str | None = None) -> None:
        self.status = (int(code), reason or "")

    def __getitem__(self, key: str) -> Any:
        if key == "headers":
            return self.headers
        raise KeyError(key)


class Context:
    """What a handler's trailing ``context`` argument gets: the toolkit's (MMS) context, for one request."""

    def __init__(self, system_properties: dict[str, Any], headers: Headers | None = None) -> None:
        self.system_properties = system_properties
        self.request_processor = [RequestProcessor(headers if headers is not None else Headers())]
        self._content_type: str | None = None

    @property
    def custom_attributes(self) -> str | None:
        """The request's ``X-Amzn-SageMaker-Custom-Attributes`` (sluice convenience)."""
        return self.request_processor[0].headers.get("X-Amzn-SageMaker-Custom-Attributes")

    def get_request_header(self, idx: int, key: str) -> str | None:
        return self.request_processor[idx].headers.get(key)

    def get_all_request_header(self, idx: int) -> Headers:
        return self.request_processor[idx].headers

    def set_response_content_type(self, idx: int, value: str) -> None:
        self._content_type = value

    def get_response_content_type(self, idx: int) -> str | None:
        return self._content_type

    def set_response_header(self, idx: int, key: str, value: str) -> None:
        self.request_processor[idx].add_response_property(key, value)

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        self.request_processor[idx].report_status(code, phrase)

    def get_response_status(self, idx: int = 0) -> tuple[int, str] | None:
        return self.request_processor[idx].status


# ---- loading the handlers -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Call:
    """A handler and whether it takes the trailing ``context`` (decided once, from its arity)."""

    fn: Callable[..., Any]
    takes_context: bool = False

    def __call__(self, context: Context, *args: Any) -> Any:
        return self.fn(*args, context) if self.takes_context else self.fn(*args)


def _user_call(name: str, fn: Any, module_file: str) -> _Call:
    if not callable(fn):
        raise HandlerError(f"{module_file}: {name} is a {type(fn).__name__}, not a function; define "
                           f"def {name}({', '.join(_ARGS[name])}).")
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return _Call(fn, False)
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return _Call(fn, True)
    want = len(_ARGS[name])
    if len(params) == want:
        return _Call(fn, False)
    if len(params) == want + 1:
        return _Call(fn, True)
    expected = ", ".join(_ARGS[name])
    raise HandlerError(
        f"{module_file}: {name} takes {len(params)} arguments ({', '.join(p.name for p in params)}); the "
        f"contract calls it as {name}({expected}) or {name}({expected}, context)."
    )


@dataclass(frozen=True)
class Handlers:
    """The resolved handlers: the user's where ``inference.py`` defines them, the defaults elsewhere."""

    model_fn: _Call
    transform_fn: _Call | None
    input_fn: _Call
    predict_fn: _Call
    output_fn: _Call
    pre_model_fn: _Call | None = None
    model_warmup_fn: _Call | None = None
    module_file: str | None = None
    user_defined: tuple[str, ...] = ()


def _import_program(code_dir: Path, program: str) -> Any:
    module_name = program[:-3] if program.endswith(".py") else program
    path = code_dir / f"{module_name}.py"
    if not path.is_file():
        return None
    if str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))
    sys.modules.pop(module_name, None)  # a fresh import: an unrelated module of that name must not win
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise HandlerError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def load_handlers(code_dir: str | Path, program: str | None = None, *, framework: str | None = None) -> Handlers:
    """Import ``program`` from ``code_dir`` (if it is there) and resolve every handler.

    ``program`` None means the default ``inference.py``, which may be absent (then every handler is a
    default). A ``program`` named explicitly must exist. ``framework`` ("sklearn", "xgboost", "pytorch")
    orders the default model loaders; see :func:`sluice.serving.defaults.default_model_fn`.
    """
    from sluice.serving import defaults

    code_dir = Path(code_dir)
    explicit = program is not None
    program = program or DEFAULT_PROGRAM
    module = _import_program(code_dir, program)
    if module is None and explicit and program != DEFAULT_PROGRAM:
        listing = sorted(p.name for p in code_dir.iterdir()) if code_dir.is_dir() else []
        raise HandlerError(
            f"SAGEMAKER_PROGRAM is {program!r} but {code_dir / program} does not exist "
            f"({code_dir} holds {listing[:10] or 'nothing'}). Check entry_point and source_dir, or unset "
            "SAGEMAKER_PROGRAM to use the default handlers."
        )
    found: dict[str, Any] = {}
    module_file = str(code_dir / program)
    if module is not None:
        found = {name: getattr(module, name) for name in _ARGS if getattr(module, name, None) is not None}
    mixed = [name for name in _PIPELINE if name in found]
    if "transform_fn" in found and mixed:
        raise HandlerError(
            f"{module_file} defines transform_fn together with {' and '.join(mixed)}. transform_fn replaces "
            "input_fn, predict_fn and output_fn: define either transform_fn alone, or any of input_fn, "
            "predict_fn and output_fn (the defaults fill in the others)."
        )
    calls = {name: _user_call(name, fn, module_file) for name, fn in found.items()}
    default_model = _Call(lambda model_dir: defaults.default_model_fn(model_dir, framework))
    return Handlers(
        model_fn=calls.get("model_fn", default_model),
        transform_fn=calls.get("transform_fn"),
        input_fn=calls.get("input_fn", _Call(defaults.default_input_fn)),
        predict_fn=calls.get("predict_fn", _Call(defaults.default_predict_fn)),
        output_fn=calls.get("output_fn", _Call(defaults.default_output_fn)),
        pre_model_fn=calls.get("pre_model_fn"),
        model_warmup_fn=calls.get("model_warmup_fn"),
        module_file=module_file if module is not None else None,
        user_defined=tuple(sorted(found)),
    )


# ---- serving requests -----------------------------------------------------------------------------
@dataclass
class Invocation:
    """The answer to one request."""

    body: bytes
    content_type: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def _base_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_utf8(content_type: str) -> bool:
    base, _, params = content_type.partition(";")
    if base.strip().lower() in UTF8_TYPES:
        return True
    return any(p.strip().lower().replace('"', "") in ("charset=utf-8", "charset=utf8") for p in params.split(";"))


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"a {type(value).__name__} is not JSON serialisable")


def to_body(value: Any) -> bytes:
    """A handler's result as response bytes: bytes and str as they are, anything else as JSON (like MMS)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    if value is None:
        return b""
    try:
        return json.dumps(value, default=_json_default).encode("utf-8")
    except TypeError as exc:
        raise InferenceError(f"the handlers returned a {type(value).__name__}, which is neither bytes, str nor "
                             f"JSON-serialisable ({exc}); return bytes or str from output_fn/transform_fn.") from exc


class InferenceService:
    """Loads the model once, then turns request bytes + headers into an :class:`Invocation` (thread-safe
    as far as the user's handlers are)."""

    def __init__(
        self, model_dir: str | Path, *, code_dir: str | Path | None = None, program: str | None = None,
        default_accept: str = DEFAULT_ACCEPT, framework: str | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.code_dir = Path(code_dir) if code_dir is not None else self.model_dir / "code"
        self.program = program
        self.default_accept = default_accept or DEFAULT_ACCEPT
        self.framework = framework
        self.system_properties: dict[str, Any] = {
            "model_dir": str(self.model_dir), "gpu_id": None, "batch_size": 1, "server_name": "sluice",
        }
        self.handlers: Handlers | None = None
        self.model: Any = None
        self.error: str | None = None
        self._loaded = threading.Event()

    @property
    def ready(self) -> bool:
        return self._loaded.is_set() and self.error is None

    @property
    def loading(self) -> bool:
        return not self._loaded.is_set()

    def load(self) -> None:
        """Resolve the handlers and run ``pre_model_fn``, ``model_fn`` and ``model_warmup_fn``.

        Raises :class:`HandlerError` or :class:`ModelLoadError`; either way :attr:`error` keeps the reason.
        """
        try:
            handlers = load_handlers(self.code_dir, self.program, framework=self.framework)
            context = Context(self.system_properties)
            model_dir = str(self.model_dir)
            if handlers.pre_model_fn is not None:
                handlers.pre_model_fn(context, model_dir)
            try:
                model = handlers.model_fn(context, model_dir)
            except (ModelLoadError, HandlerError):
                raise
            except Exception as exc:
                where = "model_fn" if "model_fn" in handlers.user_defined else "the default model_fn"
                raise ModelLoadError(f"{where} failed: {type(exc).__name__}: {exc}") from exc
            if handlers.model_warmup_fn is not None:
                handlers.model_warmup_fn(context, model_dir, model)
            self.handlers, self.model = handlers, model
        except Exception as exc:
            self.error = str(exc) if isinstance(exc, SluiceError) else f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._loaded.set()

    def invoke(self, body: bytes, headers: Headers) -> Invocation:
        """One request through ``transform_fn`` (the user's, or input_fn → predict_fn → output_fn)."""
        handlers = self.handlers
        if handlers is None:
            raise InferenceError(self.error or "the model is still loading; retry when /ping answers 200.",
                                 500 if self.error else 503)
        content_type = headers.get("Content-Type")
        accept = headers.get("Accept")
        if not accept or accept == ANY:
            accept = self.default_accept
        data: bytes | str = body
        if content_type and _is_utf8(content_type):
            try:
                data = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InferenceError(f"the body is not valid UTF-8 although Content-Type is {content_type!r} "
                                     f"({exc}).", 400) from None
        context = Context(self.system_properties, headers)
        if handlers.transform_fn is not None:
            result = handlers.transform_fn(context, self.model, data, content_type, accept)
        else:
            decoded = handlers.input_fn(context, data, content_type)
            prediction = handlers.predict_fn(context, decoded, self.model)
            result = handlers.output_fn(context, prediction, accept)
        response_type = context.get_response_content_type(0) or accept
        if isinstance(result, tuple) and len(result) == 2:
            result, response_type = result
        processor = context.request_processor[0]
        status = processor.status[0] if processor.status else 200
        return Invocation(to_body(result), str(response_type), status, dict(processor.response_headers))
