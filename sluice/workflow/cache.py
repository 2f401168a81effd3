"""The pipeline step cache: a step's cache key, its ``ExpireAfter`` window, and why a step was (not) a hit.

Contract 5.8. A step with ``CacheConfig.Enabled`` reuses the newest successful run of the same step of the same
pipeline whose cache key is equal and which ended within ``ExpireAfter``. The executor asks :func:`cache_key`
for the key of the request it is about to run, looks the digest up in the metadata store's ``cache_entries``,
and records the key's parts on the step, so :func:`explain_step` can later say why the step was a hit or a
miss (``sluice pipeline explain EXECUTION STEP``).

What the key is made of (:class:`CacheKey` ``.parts``, a JSON-able dict):

* **the service's attributes for the step type** (:data:`KEYED_ATTRIBUTES`, the DevGuide's "default cache key
  attributes"), taken from the resolved request. The rest of the request is not keyed, exactly as in the
  service: job names, resources, roles, and every *output* location (``ProcessingOutputConfig``,
  ``OutputDataConfig``, ``TransformOutput``; also ``DebugHookConfig.S3OutputPath``), which carry the execution
  id in a pipeline. Inside the keyed attributes, a value that came from a per-execution variable
  (``Execution.PipelineExecutionId``, ``...Arn``, ``StartDateTime``, ``CurrentDateTime``, the job name
  variables), directly or through a ``Std:Join`` of literals, is keyed as that variable's placeholder
  (``{Execution.PipelineExecutionId}``), not its value, so it does not make every run a miss.
* **what the service misses: the bytes.** The service hashes S3 *paths* only ("if a file in S3 is updated and
  re-uploaded with an identical name and path, the step does not run again"). sluice adds one part per S3 input
  it can name, holding a fingerprint of every object the job would read: ``content:<uri>`` for data (an
  ``S3Prefix`` lists the prefix; a ``ManifestFile`` / ``AugmentedManifestFile`` adds the objects it names),
  ``code:<uri>`` for code (the processing inputs named ``code`` and ``entrypoint``, the
  ``sagemaker_submit_directory`` bundle, a ``@step`` function's pickled payload, a Lambda step's Python source)
  and ``model:<uri>`` for the model data of a transform's model. Each is ``{"digest": "sha256:…", "objects":
  {uri: fingerprint}}`` (``objects`` is a count above :data:`DETAIL_LIMIT` objects).

Fingerprints are cheap on re-runs. An object's fingerprint is its content identity when the store has one: an
S3 ETag of 32 hex digits (the MD5 of a single-part upload) is used as ``md5:<etag>``, any other ETag (multipart)
as ``etag:<etag>``; both change whenever the bytes do. Objects of the embedded local
store are immutable files whose version tag changes when they are replaced; their SHA-256 is computed once per
version and remembered in ``<store root>/.sluice-fingerprints.sqlite3``, so a cached run stats files and reads
none. Bytes are hashed on every run only for an object with no ETag at all.

The Transform key follows the service (``ModelName``) unless ``metadata`` is given: then the model's record
stands in for its name (its containers, and the bytes of its model data and code), because a pipeline creates
its model under a new name every execution, which made every transform after a ``ModelStep`` a miss (#3392).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import hashlib
import inspect
import json
import logging
import marshal
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.errors import NoSuchKeyError, PipelineError, SluiceError
from sluice.metadata.store import CacheEntry, MetadataStore
from sluice.storage.base import ObjectInfo, ObjectStore
from sluice.storage.uri import S3Uri
from sluice.workflow.graph import StepSpec, StepType, parse_duration

__all__ = [
    "CACHEABLE",
    "DETAIL_LIMIT",
    "KEYED_ATTRIBUTES",
    "CacheExplanation",
    "CacheKey",
    "CacheOutcome",
    "cache_key",
    "check_cache_config",
    "explain",
    "explain_step",
    "fingerprint_objects",
    "parse_expire_after",
]

log = logging.getLogger("sluice.workflow")

#: Bumped when the way a key is computed changes, so older entries stop matching instead of matching wrongly.
KEY_VERSION = 1

#: An input's fingerprint names its objects one by one up to this many (so explain can say which changed).
DETAIL_LIMIT = 1000

#: The service's cache-key attributes per step type (DevGuide "Default cache key attributes by pipeline step
#: type"). Lambda is sluice's choice (the SDK's LambdaStep takes a CacheConfig; the DevGuide lists no keys):
#: the function, its inputs and its declared outputs, plus the function's source.
KEYED_ATTRIBUTES: dict[StepType, tuple[str, ...]] = {
    StepType.PROCESSING: ("AppSpecification", "Environment", "ProcessingInputs"),
    StepType.TRAINING: ("AlgorithmSpecification", "CheckpointConfig", "DebugHookConfig", "DebugRuleConfigurations",
                        "Environment", "HyperParameters", "InputDataConfig"),
    StepType.TUNING: ("HyperParameterTuningJobConfig", "TrainingJobDefinition", "TrainingJobDefinitions"),
    StepType.AUTOML: ("AutoMLJobConfig", "AutoMLJobObjective", "InputDataConfig", "ProblemType"),
    StepType.TRANSFORM: ("DataProcessing", "Environment", "ModelName", "TransformInput"),
    StepType.QUALITY_CHECK: ("AppSpecification", "Environment", "ProcessingInputs", "ProcessingResources",
                             "StoppingCondition"),
    StepType.CLARIFY_CHECK: ("AppSpecification", "Environment", "ProcessingInputs", "ProcessingResources",
                             "StoppingCondition"),
    StepType.EMR: ("ClusterId", "StepConfig"),
    StepType.LAMBDA: ("Arguments",),
}

#: The step types that can be cached.
CACHEABLE = frozenset(KEYED_ATTRIBUTES)

#: Nested attributes the service keys only in part (DevGuide): ``{attribute: the child attributes keyed}``.
_KEYED_CHILDREN: dict[str, tuple[str, ...]] = {
    "TrainingJobDefinition": ("AlgorithmSpecification", "HyperParameterRanges", "InputDataConfig",
                              "StaticHyperParameters", "TuningObjective"),
    "AutoMLJobConfig": ("CompletionCriteria", "CandidateGenerationConfig", "DataSplitConfig", "Mode"),
}

#: Step-level fields (outside ``Arguments``) that are part of a step's key: the check steps' settings and a
#: Lambda step's function and outputs.
_STEP_FIELDS: dict[StepType, tuple[str, ...]] = {
    StepType.QUALITY_CHECK: ("CheckType", "SkipCheck", "RegisterNewBaseline", "ModelPackageGroupName",
                             "SuppliedBaselineStatistics", "SuppliedBaselineConstraints"),
    StepType.CLARIFY_CHECK: ("CheckType", "SkipCheck", "RegisterNewBaseline", "ModelPackageGroupName",
                             "SuppliedBaselineConstraints"),
    StepType.LAMBDA: ("FunctionArn", "OutputParameters"),
}

#: Execution variables whose value differs in every execution.
_PER_EXECUTION = frozenset(f"Execution.{n}" for n in (
    "PipelineExecutionId", "PipelineExecutionArn", "StartDateTime", "CurrentDateTime", "TrainingJobName",
    "ProcessingJobName"))

#: Processing inputs that carry the job's code, not its data.
_CODE_INPUTS = frozenset({"code", "entrypoint"})

_MD5 = re.compile(r"[0-9a-fA-F]{32}")


@dataclass(frozen=True)
class CacheKey:
    """A step's cache key: ``digest`` (hex SHA-256) over ``parts``, the readable things it is made of."""

    digest: str
    parts: dict[str, Any]


# ---- ExpireAfter ------------------------------------------------------------------------------------------------

def parse_expire_after(text: str | None) -> float | None:
    """``ExpireAfter`` in seconds (None: no ExpireAfter, so entries never expire).

    Lenient as the DevGuide's examples are: ``P30D``, ``PT1H``, ``P4DT12H``, ``p30d``, ``30d``, ``T16m``,
    ``30dT5h``, ``5y`` (a year is 365 days, a month 30). Anything else raises :class:`PipelineError`.
    """
    if text is None:
        return None
    if not isinstance(text, str):
        raise PipelineError(f"ExpireAfter must be an ISO-8601 duration string such as 'P30D', not {text!r}.")
    return parse_duration(text).total_seconds()


def check_cache_config(spec: StepSpec) -> list[str]:
    """The problems of ``spec``'s ``CacheConfig``, to refuse before anything runs (empty when it is fine)."""
    config = spec.cache_config
    if config is None or not config.enabled:
        return []
    problems = []
    if spec.type not in CACHEABLE:
        kinds = ", ".join(sorted(str(t) for t in CACHEABLE))
        problems.append(f"CacheConfig enables caching, but {spec.type} steps are never cached (these are: {kinds}); "
                        "remove the CacheConfig from this step")
    if config.expire_after is not None:
        try:
            seconds = parse_expire_after(config.expire_after)
        except PipelineError as exc:
            problems.append(str(exc))
        else:
            if seconds is not None and seconds <= 0:
                problems.append(f"ExpireAfter {config.expire_after!r} is zero, so no earlier run could ever be "
                                "reused; give a positive duration such as 'P30D', or disable caching")
    return problems


# ---- the key ----------------------------------------------------------------------------------------------------

def cache_key(spec: StepSpec, request: Mapping[str, Any], store: ObjectStore, *,
              metadata: MetadataStore | None = None) -> CacheKey | None:
    """The cache key of ``spec`` run with ``request`` (its Arguments with every expression resolved); None when
    steps of its type are never cached.

    ``store`` is where the S3 inputs are fingerprinted. With ``metadata``, a Transform step is keyed on what its
    model is rather than on the model's name (see the module docstring). Inputs that do not exist are
    fingerprinted as missing rather than refused: the job itself refuses them, and a failed run is never cached.
    """
    if spec.type not in CACHEABLE:
        return None
    parts: dict[str, Any] = {}
    arguments = spec.arguments if isinstance(spec.arguments, Mapping) else {}
    for attribute in KEYED_ATTRIBUTES[spec.type]:
        if spec.type is StepType.LAMBDA:
            parts[attribute] = _keyable(arguments, request)
            continue
        if request.get(attribute) is None:
            continue
        parts[attribute] = _keyed_part(attribute, _keyable(arguments.get(attribute), request[attribute]))
    for name in _STEP_FIELDS.get(spec.type, ()):
        if spec.extra.get(name) is not None:
            parts[name] = spec.extra[name]
    if spec.type is StepType.TRANSFORM and metadata is not None and isinstance(request.get("ModelName"), str):
        _model_parts(parts, request["ModelName"], metadata)
    sources = _Sources(store)
    for label, uri, reader in _inputs(spec, request, parts):
        parts[f"{label}:{uri}"] = sources.fingerprint(uri, reader)
    if spec.type is StepType.LAMBDA and isinstance(spec.extra.get("FunctionArn"), str):
        arn = spec.extra["FunctionArn"]
        parts[f"code:{arn}"] = _function_code(arn)
    text = _canonical(parts)
    digest = hashlib.sha256(f"sluice-cache-key/{KEY_VERSION}\n{spec.type}\n{text}".encode()).hexdigest()
    return CacheKey(digest, json.loads(json.dumps(parts)))  # plain JSON types, in the order built


def _canonical(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PipelineError(f"a step's cache key holds a value that is not plain JSON ({exc}); every expression in "
                            "the request must be resolved before the key is computed.") from None


def _keyed_part(attribute: str, value: Any) -> Any:
    """``value`` of a keyed attribute, cut to what the service keys of it."""
    children = _KEYED_CHILDREN.get(attribute)
    if children is not None and isinstance(value, Mapping):
        return {k: v for k, v in value.items() if k in children}
    if attribute == "TrainingJobDefinitions" and isinstance(value, list):
        keep = (*_KEYED_CHILDREN["TrainingJobDefinition"], "DefinitionName")
        return [{k: v for k, v in d.items() if k in keep} if isinstance(d, Mapping) else d for d in value]
    if attribute == "DebugHookConfig" and isinstance(value, Mapping):
        return {k: v for k, v in value.items() if k != "S3OutputPath"}  # an output location
    return value


def _keyable(expr: Any, value: Any) -> Any:
    """``value`` (resolved) with what came from a per-execution variable put back as that variable's placeholder.

    ``expr`` is the same place in the unresolved arguments. A ``Std:Join`` is replaced only when every member is
    a literal or such a variable (its text is then known without resolving anything); otherwise the value stays.
    """
    if isinstance(expr, Mapping):
        static = _static_text(expr)
        if static is not None and _mentions_per_execution(expr):
            return static
        if isinstance(value, Mapping):
            return {k: _keyable(expr.get(k), v) for k, v in value.items()}
        return value
    if isinstance(expr, list) and isinstance(value, list) and len(expr) == len(value):
        return [_keyable(e, v) for e, v in zip(expr, value, strict=True)]
    return value


def _static_text(expr: Any) -> str | None:
    """The string an expression made only of literals and per-execution variables stands for, with each
    variable as ``{Execution.X}``; None when it needs anything else resolved."""
    if isinstance(expr, bool):
        return "true" if expr else "false"
    if isinstance(expr, str | int | float):
        return str(expr)
    if isinstance(expr, Mapping) and len(expr) == 1:
        if expr.get("Get") in _PER_EXECUTION:
            return "{" + expr["Get"] + "}"
        join = expr.get("Std:Join")
        if isinstance(join, Mapping) and isinstance(join.get("Values"), list):
            texts = [_static_text(v) for v in join["Values"]]
            if all(t is not None for t in texts):
                return str(join.get("On", "")).join(t for t in texts if t is not None)
    return None


def _mentions_per_execution(expr: Any) -> bool:
    if isinstance(expr, Mapping):
        return expr.get("Get") in _PER_EXECUTION or any(_mentions_per_execution(v) for v in expr.values())
    if isinstance(expr, list):
        return any(_mentions_per_execution(v) for v in expr)
    return False


def _model_parts(parts: dict[str, Any], model_name: str, metadata: MetadataStore) -> None:
    """Key a transform on its model's containers instead of the model's (per-execution) name."""
    row = metadata.get_resource("Model", model_name)
    if row is None:
        return  # the job refuses an unknown model; keep the service's key
    record = row.record
    primary = record.get("PrimaryContainer")
    containers = [primary] if primary else list(record.get("Containers") or [])
    del parts["ModelName"]
    parts["Model"] = {"Containers": containers,
                      "InferenceExecutionConfig": record.get("InferenceExecutionConfig"),
                      "EnableNetworkIsolation": bool(record.get("EnableNetworkIsolation", False))}


# ---- which inputs a request reads ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Reader:
    """How a job reads one S3 URI: ``S3Prefix`` (every object below it), a manifest, or one ``Object``."""

    data_type: str = "S3Prefix"
    attribute_names: tuple[str, ...] = ()


_OBJECT = _Reader("Object")


def _inputs(spec: StepSpec, request: Mapping[str, Any], parts: Mapping[str, Any]) -> list[tuple[str, str, _Reader]]:
    """``(label, uri, reader)`` for every S3 input of the request, in request order."""
    out: list[tuple[str, str, _Reader]] = []
    kind = spec.type
    if kind in (StepType.PROCESSING, StepType.QUALITY_CHECK, StepType.CLARIFY_CHECK):
        for item in _dicts(request.get("ProcessingInputs")):
            s3 = item.get("S3Input")
            if isinstance(s3, Mapping):
                label = "code" if item.get("InputName") in _CODE_INPUTS else "content"
                out.append((label, s3.get("S3Uri"), _Reader(str(s3.get("S3DataType") or "S3Prefix"))))
        for name in ("SuppliedBaselineStatistics", "SuppliedBaselineConstraints"):
            out.append(("content", spec.extra.get(name), _OBJECT))
    if kind is StepType.TRAINING:
        out += _training_inputs(request.get("InputDataConfig"), request.get("HyperParameters"))
        out += _function_payload(request)
    if kind is StepType.TUNING:
        definitions = [request.get("TrainingJobDefinition"), *_dicts(request.get("TrainingJobDefinitions"))]
        for definition in _dicts(definitions):
            out += _training_inputs(definition.get("InputDataConfig"), definition.get("StaticHyperParameters"))
    if kind is StepType.AUTOML:
        for channel in _dicts(request.get("InputDataConfig")):
            s3 = (channel.get("DataSource") or {}).get("S3DataSource")
            if isinstance(s3, Mapping):
                out.append(("content", s3.get("S3Uri"), _Reader(str(s3.get("S3DataType") or "S3Prefix"))))
    if kind is StepType.TRANSFORM:
        s3 = ((request.get("TransformInput") or {}).get("DataSource") or {}).get("S3DataSource")
        if isinstance(s3, Mapping):
            out.append(("content", s3.get("S3Uri"), _Reader(str(s3.get("S3DataType") or "S3Prefix"))))
        for container in _dicts((parts.get("Model") or {}).get("Containers")):
            out.append(("model", container.get("ModelDataUrl"), _OBJECT))
            out.append(("code", (container.get("Environment") or {}).get("SAGEMAKER_SUBMIT_DIRECTORY"), _OBJECT))
    return [(label, uri, reader) for label, uri, reader in out if isinstance(uri, str) and uri.startswith("s3://")]


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _training_inputs(channels: Any, hyperparameters: Any) -> list[tuple[str, Any, _Reader]]:
    out: list[tuple[str, Any, _Reader]] = []
    for channel in _dicts(channels):
        s3 = (channel.get("DataSource") or {}).get("S3DataSource")
        if isinstance(s3, Mapping):
            names = s3.get("AttributeNames")
            out.append(("content", s3.get("S3Uri"), _Reader(str(s3.get("S3DataType") or "S3Prefix"),
                                                            tuple(names) if isinstance(names, list) else ())))
    if isinstance(hyperparameters, Mapping):
        submit = hyperparameters.get("sagemaker_submit_directory")
        if isinstance(submit, str) and submit.startswith('"'):  # framework estimators JSON-encode their values
            with contextlib.suppress(json.JSONDecodeError):
                submit = json.loads(submit)
        out.append(("code", submit, _OBJECT))
    return out


def _function_payload(request: Mapping[str, Any]) -> list[tuple[str, Any, _Reader]]:
    """A ``@step`` function's pickled function and arguments (read by the job, named in its arguments only)."""
    args = (request.get("AlgorithmSpecification") or {}).get("ContainerArguments")
    if not isinstance(args, list) or "--func_step_s3_dir" not in args:
        return []

    def after(flag: str) -> Any:
        i = args.index(flag) + 1 if flag in args else len(args)
        return args[i] if i < len(args) else None

    base, step, folder = after("--s3_base_uri"), after("--pipeline_step_name"), after("--func_step_s3_dir")
    if not all(isinstance(v, str) and v for v in (base, step, folder)):
        return []
    return [("code", f"{str(base).rstrip('/')}/{step}/{folder}/", _Reader())]


def _function_code(arn: str) -> dict[str, Any]:
    """A Lambda step's callable, fingerprinted by the source file that defines it (or its own source or code)."""
    from sluice.workflow.lambda_step import local_function

    try:
        func = local_function(arn)
    except PipelineError:
        return _digest_of({arn: "unresolved"})  # the step fails when it runs; such a run is never cached
    target = inspect.unwrap(func)
    try:
        path = inspect.getsourcefile(target)
        if path and Path(path).is_file():
            return _digest_of({Path(path).resolve().as_uri(): "sha256:" + _sha256_file(Path(path))})
    except TypeError:
        pass
    try:
        source = inspect.getsource(target).encode()
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        source = marshal.dumps(code) if code is not None else repr(target).encode()
    return _digest_of({arn: "sha256:" + hashlib.sha256(source).hexdigest()})


def _digest_of(objects: Mapping[str, str]) -> dict[str, Any]:
    """An input's fingerprint: the digest over its objects' fingerprints, and the objects (or their count)."""
    h = hashlib.sha256()
    for uri, fp in objects.items():
        h.update(f"{uri}\t{fp}\n".encode())
    listed: Any = dict(objects) if len(objects) <= DETAIL_LIMIT else len(objects)
    return {"digest": f"sha256:{h.hexdigest()}", "objects": listed}


# ---- fingerprints ------------------------------------------------------------------------------------------------

class _Sources:
    """Fingerprints the inputs of one key (each URI once)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._seen: dict[tuple[str, _Reader], dict[str, Any]] = {}

    def fingerprint(self, uri: str, reader: _Reader) -> dict[str, Any]:
        if (uri, reader) not in self._seen:
            self._seen[(uri, reader)] = _digest_of(self._objects(uri, reader))
        return self._seen[(uri, reader)]

    def _objects(self, uri: str, reader: _Reader) -> dict[str, str]:
        try:
            where = S3Uri.parse(uri)
        except SluiceError:
            return {uri: "invalid"}
        store = self.store
        if reader.data_type == "S3Prefix":
            try:
                infos = [o for o in store.list(where.bucket, where.key) if not o.key.endswith("/")]
            except NoSuchKeyError:
                infos = []
            return dict(zip((o.uri for o in infos), fingerprint_objects(store, infos), strict=True))
        manifest = _stat(store, where.bucket, where.key)
        if manifest is None:
            return {uri: "missing"}
        infos = [manifest]
        if reader.data_type in ("ManifestFile", "AugmentedManifestFile"):
            refs = _manifest_refs(store, manifest, reader)
            with ThreadPoolExecutor(max_workers=1 if store.local_path(where.bucket, where.key) else 16) as pool:
                stats = list(pool.map(lambda ref: (ref, _stat(store, *ref)), refs))
            missing = {f"s3://{b}/{k}": "missing" for (b, k), info in stats if info is None}
            infos += [info for _, info in stats if info is not None]
            return {**dict(zip((o.uri for o in infos), fingerprint_objects(store, infos), strict=True)), **missing}
        return dict(zip((o.uri for o in infos), fingerprint_objects(store, infos), strict=True))


def _stat(store: ObjectStore, bucket: str, key: str) -> ObjectInfo | None:
    try:
        return store.stat(bucket, key)
    except NoSuchKeyError:
        return None


def _manifest_refs(store: ObjectStore, manifest: ObjectInfo, reader: _Reader) -> list[tuple[str, str]]:
    """The objects a manifest names, in order and once each; a malformed manifest names none (the job refuses it)."""
    from sluice.channels.plan import parse_manifest

    try:
        text = store.get_bytes(manifest.bucket, manifest.key).decode("utf-8")
    except (NoSuchKeyError, UnicodeDecodeError):
        return []
    refs: list[tuple[str, str]] = []
    if reader.data_type == "ManifestFile":
        try:
            prefix, suffixes = parse_manifest(text, manifest.uri)
        except SluiceError:
            return []
        refs = [(prefix.bucket, prefix.key + s) for s in suffixes]
    else:
        for line in text.splitlines():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(obj, dict):
                continue
            names = reader.attribute_names or tuple(obj)
            for name in names:
                value = obj.get(name)
                if name.endswith("-ref") and isinstance(value, str):
                    try:
                        ref = S3Uri.parse(value)
                    except SluiceError:
                        continue
                    refs.append((ref.bucket, ref.key))
    return list(dict.fromkeys(refs))


def fingerprint_objects(store: ObjectStore, infos: Sequence[ObjectInfo]) -> list[str]:
    """One fingerprint per object, in order: ``md5:`` / ``etag:`` from an S3 ETag, else ``sha256:`` of the bytes
    (for the local store, remembered per object version, so each version is read once)."""
    out: list[str | None] = [None] * len(infos)
    local: list[tuple[int, ObjectInfo, Path]] = []
    for i, info in enumerate(infos):
        path = store.local_path(info.bucket, info.key)
        if path is not None and info.etag:
            local.append((i, info, path))
        elif path is not None:
            out[i] = "sha256:" + _sha256_file(path)
        elif _MD5.fullmatch(info.etag):
            out[i] = f"md5:{info.etag.lower()}"
        elif info.etag:
            out[i] = f"etag:{info.etag}"
        else:  # no identity at all: the bytes are the only way to know
            with store.open(info.bucket, info.key) as fh:
                out[i] = "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest()
    if local:
        memo = _Memo.for_store(store)
        known = memo.lookup([(info.bucket, info.key, info.etag) for _, info, _ in local])
        todo = [(i, info, path) for i, info, path in local if (info.bucket, info.key, info.etag) not in known]
        with ThreadPoolExecutor(max_workers=4) as pool:  # hashlib releases the GIL on large buffers
            hashed = list(pool.map(lambda t: _sha256_file(t[2]), todo))
        memo.remember([(info.bucket, info.key, info.etag, digest)
                       for (_, info, _), digest in zip(todo, hashed, strict=True)])
        for (_, info, _), digest in zip(todo, hashed, strict=True):
            known[(info.bucket, info.key, info.etag)] = digest
        for i, info, _ in local:
            out[i] = "sha256:" + known[(info.bucket, info.key, info.etag)]
    return [fp or "missing" for fp in out]


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class _Memo:
    """SHA-256 of local-store objects by version (``bucket, key, version tag``), in a SQLite file in the store's
    root (beside the buckets: a name starting with '.' is never a bucket). Where that file cannot be used, every
    run hashes again: slower, never wrong."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    @classmethod
    def for_store(cls, store: ObjectStore) -> _Memo:
        root = getattr(store, "root", None)
        return cls(Path(root) / ".sluice-fingerprints.sqlite3" if root is not None else None)

    def _connect(self) -> sqlite3.Connection | None:
        if self.path is None:
            return None
        conn = None
        try:
            conn = sqlite3.connect(self.path, timeout=30)
            conn.execute("CREATE TABLE IF NOT EXISTS fingerprints (bucket TEXT NOT NULL, key TEXT NOT NULL, "
                         "version TEXT NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (bucket, key))")
            return conn
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            log.debug("fingerprint memo %s unavailable (%s); objects are hashed on every run", self.path, exc)
            return None

    def lookup(self, objects: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
        wanted = list(objects)
        found: dict[tuple[str, str, str], str] = {}
        conn = self._connect()
        if conn is None:
            return found
        with conn:
            by_bucket: dict[str, list[str]] = {}
            for bucket, key, _ in wanted:
                by_bucket.setdefault(bucket, []).append(key)
            for bucket, keys in by_bucket.items():
                for i in range(0, len(keys), 500):
                    chunk = keys[i:i + 500]
                    rows = conn.execute(f"SELECT key, version, sha256 FROM fingerprints WHERE bucket = ? AND key IN "
                                        f"({','.join('?' * len(chunk))})", [bucket, *chunk])
                    for key, version, digest in rows:
                        found[(bucket, key, version)] = digest
        conn.close()
        return {o: found[o] for o in wanted if o in found}

    def remember(self, rows: list[tuple[str, str, str, str]]) -> None:
        conn = self._connect() if rows else None
        if conn is None:
            return
        try:
            with conn:
                conn.executemany("INSERT OR REPLACE INTO fingerprints VALUES (?, ?, ?, ?)", rows)
        except sqlite3.Error as exc:
            log.debug("cannot write the fingerprint memo %s: %s", self.path, exc)
        finally:
            conn.close()


# ---- explain ----------------------------------------------------------------------------------------------------

class CacheOutcome(enum.StrEnum):
    """Why a step was or was not a cache hit."""

    HIT = "hit"
    NOT_CACHEABLE = "not-cacheable"
    DISABLED = "disabled"
    NO_KEY = "no-key"
    NO_EARLIER_RUN = "no-earlier-run"
    EXPIRED = "expired"
    CONCURRENT = "concurrent"
    CHANGED = "changed"


@dataclass(frozen=True)
class CacheExplanation:
    """Why a step was (not) a cache hit: ``outcome``, a one-line ``summary`` and the ``details`` behind it
    (for a changed key, one line per difference). ``entry`` is the run reused, or the one compared with."""

    outcome: CacheOutcome
    summary: str
    details: tuple[str, ...] = ()
    entry: CacheEntry | None = field(default=None, compare=False)

    @property
    def hit(self) -> bool:
        return self.outcome is CacheOutcome.HIT

    def __str__(self) -> str:
        return "\n".join([self.summary, *(f"  - {d}" for d in self.details)])


#: At most this many differences are listed; the rest are counted.
_MAX_DETAILS = 20


def explain(digest: str | None, parts: Mapping[str, Any] | None, *, hit: CacheEntry | None,
            candidates: Sequence[CacheEntry], expire_after: float | None = None, started_at: float | None = None,
            execution_arn: str | None = None, step_type: StepType | str | None = None,
            enabled: bool = True) -> CacheExplanation:
    """Why a step run with key ``digest`` / ``parts`` was a hit (``hit``: the entry it reused) or a miss.

    ``candidates`` are the step's cache entries (any key, newest first, as ``MetadataStore.cache_entries``
    gives them); ``expire_after`` is the step's window in seconds; ``started_at`` when this run started (entries
    made later could not have been reused); ``execution_arn`` this run's execution (its own entry is ignored).
    A miss is explained by the nearest earlier entry: the one whose parts differ least (the newest among equals).
    """
    kind = StepType(step_type) if step_type is not None else None
    if kind is not None and kind not in CACHEABLE:
        return CacheExplanation(CacheOutcome.NOT_CACHEABLE, f"Not cached: {kind} steps are never cached.")
    if not enabled:
        return CacheExplanation(CacheOutcome.DISABLED, "Not cached: caching is off for this step (its CacheConfig "
                                "is missing or has Enabled false).")
    if hit is not None:
        when = _when(hit.created_at)
        age = f", {_duration(started_at - hit.created_at)} before this run" if started_at is not None else ""
        return CacheExplanation(CacheOutcome.HIT, f"Cache hit: reused the run of execution {hit.execution_arn}, "
                                f"which succeeded at {when}{age}.", (f"cache key {hit.key}",), hit)
    if parts is None:
        return CacheExplanation(CacheOutcome.NO_KEY, "Not cached: no cache key was recorded for this run (the step "
                                "ended before its cache lookup).")
    others = [c for c in candidates if execution_arn is None or c.execution_arn != execution_arn]
    earlier = [c for c in others if started_at is None or c.created_at <= started_at]
    same = [c for c in earlier if c.key == digest]
    if same:
        entry = same[0]
        ends = f" ended at {_when(entry.created_at + expire_after)}" if expire_after is not None else " had ended"
        return CacheExplanation(CacheOutcome.EXPIRED, f"Cache miss: the run with the same key, execution "
                                f"{entry.execution_arn} at {_when(entry.created_at)}, had expired: its ExpireAfter "
                                f"window{ends}, before this run started.", (f"cache key {digest}",), entry)
    running = [c for c in others if c.key == digest and c not in earlier and _started(c, started_at)]
    if running:
        entry = running[-1]
        return CacheExplanation(CacheOutcome.CONCURRENT, f"Cache miss: a run with the same key (execution "
                                f"{entry.execution_arn}) finished at {_when(entry.created_at)}, after this run "
                                "started; as in the service, both ran.", (), entry)
    if not earlier:
        return CacheExplanation(CacheOutcome.NO_EARLIER_RUN, "Cache miss: there is no earlier successful run of this "
                                "step in this pipeline to reuse.")
    scored = [(_differences(c.parts, parts), c) for c in earlier]
    fewest = min(len(d) for d, _ in scored)
    diffs, entry = next((d, c) for d, c in scored if len(d) == fewest)  # newest first among the closest
    expired = (expire_after is not None and started_at is not None
               and entry.created_at + expire_after < started_at)
    note = " (that run has also expired)" if expired else ""
    shown = diffs[:_MAX_DETAILS]
    if len(diffs) > _MAX_DETAILS:
        shown.append(f"... and {len(diffs) - _MAX_DETAILS} more differences")
    return CacheExplanation(CacheOutcome.CHANGED, f"Cache miss: the key changed. The nearest earlier run, execution "
                            f"{entry.execution_arn} at {_when(entry.created_at)}{note}, differs in "
                            f"{len(diffs)} place{'s' if len(diffs) != 1 else ''} (old -> new):", tuple(shown), entry)


def _started(entry: CacheEntry, before: float | None) -> bool:
    """Whether ``entry``'s run had started by ``before`` (its record's ``StartTime``; unknown counts as yes)."""
    start = entry.record.get("StartTime") if isinstance(entry.record, Mapping) else None
    return before is None or not isinstance(start, int | float) or start <= before


def explain_step(metadata: MetadataStore, pipeline: str, spec: StepSpec, record: Mapping[str, Any],
                 execution_arn: str | None = None) -> CacheExplanation:
    """:func:`explain` for one step of an execution, from its record (``CacheKey``, ``CacheHitResult``,
    ``StartTime``) and the pipeline's cache entries for the step."""
    key = record.get("CacheKey") if isinstance(record.get("CacheKey"), Mapping) else {}
    digest, parts = key.get("Digest"), key.get("Parts")
    candidates = metadata.cache_entries(pipeline, step=spec.name, limit=100)
    hit = None
    source = (record.get("CacheHitResult") or {}).get("SourcePipelineExecutionArn")
    if source:
        pool = candidates if any(c.execution_arn == source for c in candidates) else \
            metadata.cache_entries(pipeline, step=spec.name, key=digest, limit=100) if digest else []
        hit = next((c for c in pool if c.execution_arn == source and (digest is None or c.key == digest)), None)
        if hit is None:
            return CacheExplanation(CacheOutcome.HIT, f"Cache hit: reused the run of execution {source} (its cache "
                                    "entry is no longer on record).")
    config = spec.cache_config
    window = parse_expire_after(config.expire_after) if config is not None and config.expire_after else None
    started = record.get("StartTime")
    return explain(digest, parts, hit=hit, candidates=candidates, expire_after=window,
                   started_at=float(started) if isinstance(started, int | float) else None,
                   execution_arn=execution_arn, step_type=spec.type,
                   enabled=config is not None and config.enabled)


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """One line per difference between two keys' parts, in part order (old -> new)."""
    out: list[str] = []
    for name in list(dict.fromkeys([*new, *old])):
        label, _, uri = name.partition(":")
        is_input = label in ("content", "code", "model") and uri.startswith(("s3://", "arn:"))
        if name not in old:
            out.append(f"{_describe_input(label, uri)} is new" if is_input
                       else f"{name} was added: {_short(new[name])}")
        elif name not in new:
            out.append(f"{_describe_input(label, uri)} is no longer read" if is_input
                       else f"{name} was removed (it was {_short(old[name])})")
        elif is_input:
            out += _input_changes(label, uri, old[name], new[name])
        else:
            out += _value_changes(name, old[name], new[name])
    return out


def _describe_input(label: str, uri: str) -> str:
    return {"content": "input", "code": "code", "model": "model data"}[label] + f" {uri}"


def _input_changes(label: str, uri: str, old: Any, new: Any) -> list[str]:
    if not isinstance(old, Mapping) or not isinstance(new, Mapping) or old.get("digest") == new.get("digest"):
        return [] if old == new else [f"{_describe_input(label, uri)}: {_short(old)} -> {_short(new)}"]
    before, after = old.get("objects"), new.get("objects")
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        def count(objects: Any) -> Any:
            return len(objects) if isinstance(objects, Mapping) else objects

        return [f"the bytes of {_describe_input(label, uri)} changed ({count(before)} -> {count(after)} objects, "
                f"more than {DETAIL_LIMIT}: too many to name which)"]
    out = []
    for obj in dict.fromkeys([*after, *before]):
        if obj not in before:
            out.append(f"{_describe_input(label, uri)}: {obj} was added")
        elif obj not in after:
            out.append(f"{_describe_input(label, uri)}: {obj} was removed")
        elif before[obj] != after[obj]:
            subject = "its bytes" if obj == uri else f"the bytes of {obj}"
            what = f"{obj} is missing now" if after[obj] == "missing" else \
                f"{subject} changed ({_fingerprint(before[obj])} -> {_fingerprint(after[obj])})"
            out.append(f"{_describe_input(label, uri)}: {what}")
    return out


def _fingerprint(fp: str) -> str:
    """``sha256:0123456789ab...``: enough of a fingerprint to tell two apart."""
    kind, _, value = fp.partition(":")
    return f"{kind}:{value[:12]}..." if len(value) > 12 else fp


_NAME_KEYS = ("InputName", "ChannelName", "OutputName", "Name", "DefinitionName")


def _value_changes(path: str, old: Any, new: Any) -> list[str]:
    if old == new:
        return []
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = []
        for key in dict.fromkeys([*new, *old]):
            where = f"{path}.{key}"
            if key not in old:
                out.append(f"{where} was added: {_short(new[key])}")
            elif key not in new:
                out.append(f"{where} was removed (it was {_short(old[key])})")
            else:
                out += _value_changes(where, old[key], new[key])
        return out
    if isinstance(old, list) and isinstance(new, list):
        name_key = _list_name_key(old, new)
        if name_key is not None:
            before = {item[name_key]: item for item in old}
            after = {item[name_key]: item for item in new}
            return _keyed_list_changes(path, before, after)
        if len(old) == len(new):
            return [line for i, (o, n) in enumerate(zip(old, new, strict=True))
                    for line in _value_changes(f"{path}[{i}]", o, n)]
    return [f"{path}: {_short(old)} -> {_short(new)}"]


def _list_name_key(old: list[Any], new: list[Any]) -> str | None:
    """The key naming the elements of both lists (``InputName``...), when every element has a distinct one."""
    items = [*old, *new]
    for key in _NAME_KEYS:
        if items and all(isinstance(i, Mapping) and isinstance(i.get(key), str) for i in items) \
                and len({i[key] for i in old}) == len(old) and len({i[key] for i in new}) == len(new):
            return key
    return None


def _keyed_list_changes(path: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    out = []
    for name in dict.fromkeys([*after, *before]):
        where = f"{path}[{name!r}]"
        if name not in before:
            out.append(f"{where} was added")
        elif name not in after:
            out.append(f"{where} was removed")
        else:
            out += _value_changes(where, before[name], after[name])
    if not out:
        out.append(f"{path}: the order changed ({', '.join(before)} -> {', '.join(after)})")
    return out


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    """``2 d 3 h``, ``5 min 2 s``: the two largest units."""
    days, rest = divmod(max(0, int(seconds)), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = [f"{v} {u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")) if v]
    return " ".join(units[:2]) or "0 s"

