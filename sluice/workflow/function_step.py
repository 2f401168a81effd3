"""``sluice.workflow.function_step``: the ``@step`` decorator, a Python function as a pipeline step.

Calling a decorated function records the call and returns a :class:`DelayedReturn` instead of running it;
passing one call's result to another makes the second depend on the first::

    @step(instance_type="ml.m5.xlarge")
    def prepare(n: int) -> list: ...

    @step
    def total(xs: list) -> int: ...

    pipeline = Pipeline(name="p", steps=[total(prepare(3))])   # both steps; prepare first

In the definition a function step is a ``Training`` step shaped as the SDK's remote-function job
(contract 5.6): entrypoint ``/bin/bash /opt/ml/input/data/sagemaker_remote_function_bootstrap/job_driver.sh``,
container arguments naming the S3 base, the step and ``--property_references`` for pipeline-variable
arguments, and the result at ``<OutputDataConfig.S3OutputPath>/results.json`` under ``"Result"``, read back
with ``Std:JsonGet`` on an ``S3Uri``. While ``definition()`` compiles, the function and its arguments are
pickled (cloudpickle when installed) to ``<s3 base>/<step>/<payload digest>/{function,arguments}/payload.pkl``,
and a ``dependencies`` requirements file and the pre-execution commands go to the SDK's
``pre_exec_script_and_dependencies`` channel beside them. Pipeline variables among the arguments are stored
as :class:`PipelineVariableRef` / :class:`DelayedReturnRef` placeholders, which the step's runner
(:mod:`sluice.workflow.runners.function`) fills in when the step runs.

The folder (``--func_step_s3_dir``) names the payload's content, not the build time as in the SDK, so building
the same pipeline again gives the same arguments and a re-run can be a cache hit (SDK issue #2736). cloudpickle's
bytes are not that digest: they differ between processes for a set literal in the function or a set argument
(ordered by the per-process string hash) and for a class pickled by value (cloudpickle gives it a random id per
process, and per class object within one, such as a class a notebook cell defines again). The digest is taken
over a canonical pickle that orders sets and names such classes by module and qualified name instead; it still
covers everything cloudpickle stores, helpers and classes included. Each object is written once: a rebuild finds
the bytes of the first build there and leaves them, so the step cache, which reads those bytes, sees no change.
Two things still change a step's folder: a step without ``name=`` is named with a new uuid on every build, as in
the SDK; and pickled code records its line numbers, so lines added to a function also move the functions below
it in the same file.

Functions and classes from modules that are not installed (a script and its neighbours, a test module) are
pickled by value: the job's interpreter could not import those modules by name.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import pickle
import re
import site
import sys
import sysconfig
import threading
import typing
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.errors import PipelineError
from sluice.workflow.entities import PipelineVariable, RequestType, serialize
from sluice.workflow.execution_variables import ExecutionVariable, ExecutionVariables
from sluice.workflow.functions import Join, JsonGet
from sluice.workflow.graph import StepType
from sluice.workflow.parameters import Parameter
from sluice.workflow.properties import Properties
from sluice.workflow.retry import RetryPolicy
from sluice.workflow.step_outputs import StepOutput
from sluice.workflow.steps import ConfigurableRetryStep
from sluice.workflow.utilities import load_step_compilation_context, trim_request_dict

__all__ = ["DelayedReturn", "DelayedReturnRef", "PipelineVariableRef", "step"]

RUNTIME_SCRIPTS_CHANNEL_NAME = "sagemaker_remote_function_bootstrap"
SCRIPT_AND_DEPENDENCIES_CHANNEL_NAME = "pre_exec_script_and_dependencies"
ENTRYPOINT_SCRIPT_NAME = "job_driver.sh"
PRE_EXECUTION_SCRIPT_NAME = "pre_exec.sh"
RESULTS_FOLDER = "results"
JSON_RESULTS_FILE = "results.json"
JSON_SERIALIZED_RESULT_KEY = "Result"
CONTAINER_ENTRYPOINT = ["/bin/bash", f"/opt/ml/input/data/{RUNTIME_SCRIPTS_CHANNEL_NAME}/{ENTRYPOINT_SCRIPT_NAME}"]


@dataclass(frozen=True)
class PipelineVariableRef:
    """A pipeline variable among a function step's pickled arguments: its expression, resolved at execution.

    ``kind`` is a parameter's type (``Integer``, ``Float``, ``Boolean``, ``String``): its value reaches the
    step as a string (``--property_references``) and is turned back into that type, as the SDK does.
    """

    expr: Any
    kind: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class DelayedReturnRef:
    """Another function step's result among the pickled arguments: the step and the ``[key]`` path into it."""

    step_name: str
    reference_path: tuple[Any, ...] = ()


_BY_VALUE_LOCK = threading.Lock()


@contextlib.contextmanager
def _pickling_by_value(by_value: Iterable[str]) -> Iterator[None]:
    """While inside, cloudpickle pickles the modules named ``by_value`` by value (the registry is process-wide)."""
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - cloudpickle is usual but optional
        yield
        return
    with _BY_VALUE_LOCK:
        registered = cloudpickle.list_registry_pickle_by_value()
        added = []
        for name in by_value:
            module = sys.modules.get(name)
            if module is None or name in registered or getattr(module, "__name__", None) != name:
                continue
            cloudpickle.register_pickle_by_value(module)
            added.append(name)
        try:
            yield
        finally:
            for name in added:
                cloudpickle.unregister_pickle_by_value(sys.modules[name])


def _plain_dumps(obj: Any) -> bytes:
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - cloudpickle is usual but optional
        return pickle.dumps(obj)
    return bytes(cloudpickle.dumps(obj))


def _dumps(obj: Any, by_value: tuple[str, ...] = ()) -> bytes:
    """``obj`` pickled with cloudpickle (plain pickle without it), the modules ``by_value`` pickled by value."""
    with _pickling_by_value(by_value):
        return _plain_dumps(obj)


def _dumps_with_digest(obj: Any, by_value: tuple[str, ...]) -> tuple[bytes, str]:
    """``_dumps(obj, by_value)`` and the SHA-256 of ``obj``'s canonical pickle, which is the same in every
    process that builds the same ``obj`` (see the module docstring)."""
    with _pickling_by_value(by_value):
        body = _plain_dumps(obj)
        hasher = hashlib.sha256()
        _canonical_pickler()(_HashWriter(hasher), protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
        return body, hasher.hexdigest()


class _HashWriter:
    """A file for a pickler to write into a hash (the canonical pickle is never kept)."""

    def __init__(self, hasher: Any) -> None:
        self.write = hasher.update


def _canonical_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    _canonical_pickler()(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def _ordered(members: set[Any] | frozenset[Any]) -> tuple[Any, ...]:
    """A set's members in an order that does not depend on the process's string hashes."""
    items = list(members)
    kinds = {type(item) for item in items}
    if kinds in ({str}, {bytes}, {int}):
        return tuple(sorted(items))
    return tuple(sorted(items, key=_canonical_bytes))


@functools.cache
def _canonical_pickler() -> type[pickle.Pickler]:
    """cloudpickle's pickler (plain pickle's without it) with the two parts that vary between processes made
    canonical: sets are written in sorted order, and a class pickled by value is named by its module and
    qualified name instead of cloudpickle's random per-process id. Its output is only ever hashed."""
    trackers: Any
    try:
        import cloudpickle
        from cloudpickle import cloudpickle as internals
    except ImportError:  # pragma: no cover - cloudpickle is usual but optional
        base: type[pickle.Pickler] = pickle.Pickler
        trackers = {}
    else:
        base = cloudpickle.Pickler
        # id -> class for the classes cloudpickle has pickled by value; without it (another cloudpickle), the
        # digest is still stable within one process for the same class objects
        trackers = getattr(internals, "_DYNAMIC_CLASS_TRACKER_BY_ID", {})

    class CanonicalPickler(base):  # type: ignore[valid-type, misc]
        def persistent_id(self, obj: Any) -> Any:
            if isinstance(obj, set | frozenset):
                return ("set", type(obj), _ordered(obj), getattr(obj, "__dict__", None))
            if type(obj) is str and len(obj) == 32:
                cls = trackers.get(obj)
                if cls is not None:
                    return ("class", cls.__module__, cls.__qualname__)
            return None

    return CanonicalPickler


def _has_cloudpickle() -> bool:
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def _installed_roots() -> tuple[str, ...]:
    """Directories whose modules any interpreter of this installation imports by name."""
    paths = sysconfig.get_paths()
    roots = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.update(getattr(site, "getsitepackages", list)())
    roots.add(site.getusersitepackages())
    return tuple(os.path.realpath(r) + os.sep for r in roots if r)


def local_modules() -> tuple[str, ...]:
    """Loaded modules a job could not import by name: Python files outside the installation (a script's
    neighbours, a test module), sluice itself excepted. Pickles made for a job take these by value."""
    roots = _installed_roots()
    out = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if name == "__main__" or name.split(".")[0] == "sluice" or not isinstance(file, str):
            continue
        if file.endswith(".py") and not os.path.realpath(file).startswith(roots):
            out.append(name)
    return tuple(out)


class _FunctionStep(ConfigurableRetryStep):
    """The step behind a ``@step`` call: the function, its arguments and the job settings."""

    def __init__(self, name: str, display_name: str | None, description: str | None,
                 retry_policies: list[RetryPolicy] | None = None, depends_on: list[Any] | None = None,
                 func: Callable[..., Any] | None = None, func_args: tuple[Any, ...] = (),
                 func_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(name, StepType.TRAINING, display_name, description, depends_on, retry_policies)
        self._func = func
        self._func_args = func_args
        self._func_kwargs = dict(func_kwargs or {})
        self._step_kwargs = kwargs

    @property
    def func(self) -> Callable[..., Any] | None:
        return self._func

    @property
    def func_args(self) -> tuple[Any, ...]:
        return self._func_args

    @property
    def func_kwargs(self) -> dict[str, Any]:
        return self._func_kwargs

    @property  # type: ignore[override]
    def depends_on(self) -> list[Any] | None:
        return self._depends_on

    @depends_on.setter
    def depends_on(self, value: list[Any] | None) -> None:
        raise PipelineError("Cannot set depends_on for a @step function step; use add_depends_on to extend it.")

    @property
    def properties(self) -> Any:
        raise NotImplementedError("Properties attribute is not supported for a @step function step; use its return "
                                  "value (a DelayedReturn) instead.")

    def _session(self) -> Any:
        ctx = load_step_compilation_context()
        if ctx is not None and ctx.sagemaker_session is not None:
            return ctx.sagemaker_session
        from sluice.session import Session

        return Session()

    def s3_root_uri(self) -> str:
        """``s3_root_uri`` as given, or ``s3://<default bucket>[/<prefix>]``."""
        given = self._step_kwargs.get("s3_root_uri")
        if given:
            return str(given).rstrip("/")
        sess = self._session()
        prefix = f"/{sess.default_bucket_prefix}" if sess.default_bucket_prefix else ""
        return f"s3://{sess.default_bucket()}{prefix}"

    @property
    def arguments(self) -> RequestType:
        ctx = load_step_compilation_context()
        sess = self._session()
        settings = self._step_kwargs
        s3_base = f"{self.s3_root_uri()}/{ctx.pipeline_name}" if ctx else self.s3_root_uri()
        payload_dir, has_scripts = self._store_payload(sess, f"{s3_base}/{self.name}")
        prefix = f"{s3_base}/{self.name}/{payload_dir}"
        dependencies = settings.get("dependencies")
        container_args: list[Any] = [
            "--s3_base_uri", s3_base, "--region", sess.boto_region_name,
            "--client_python_version", f"{sys.version_info.major}.{sys.version_info.minor}",
            "--dependency_settings",
            json.dumps({"dependency_file": os.path.basename(dependencies) if dependencies else None})]
        if settings.get("job_conda_env"):
            container_args += ["--job_conda_env", settings["job_conda_env"]]
        container_args += ["--pipeline_step_name", self.name,
                           "--pipeline_execution_id", ExecutionVariables.PIPELINE_EXECUTION_ID,
                           "--func_step_s3_dir", payload_dir, "--property_references",
                           ExecutionVariables.PIPELINE_EXECUTION_ID.expr["Get"],
                           ExecutionVariables.PIPELINE_EXECUTION_ID.to_string()]
        for arg in _pipeline_variables((*self._func_args, *self._func_kwargs.values())):
            if isinstance(arg, DelayedReturn):
                uri = Properties.for_step_type(arg._step.name, "Training").OutputDataConfig.S3OutputPath
                container_args += [uri.expr["Get"], uri.to_string()]
            else:
                container_args += [arg.expr["Get"], arg.to_string()]
        from sluice.session import get_execution_role

        stopping: dict[str, Any] = {"MaxRuntimeInSeconds": settings.get("max_runtime_in_seconds", 24 * 60 * 60)}
        if settings.get("max_wait_time_in_seconds") is not None:
            stopping["MaxWaitTimeInSeconds"] = settings["max_wait_time_in_seconds"]
        request: dict[str, Any] = {
            "TrainingJobName": settings.get("job_name_prefix") or _job_name_prefix(self._func),
            "RoleArn": settings.get("role") or get_execution_role(),
            "StoppingCondition": stopping,
            "RetryStrategy": {"MaximumRetryAttempts": settings.get("max_retry_attempts", 1)},
        }
        if settings.get("tags"):
            request["Tags"] = settings["tags"]
        request["InputDataConfig"] = [{"ChannelName": RUNTIME_SCRIPTS_CHANNEL_NAME, "DataSource": {"S3DataSource": {
            "S3Uri": f"{s3_base}/{RUNTIME_SCRIPTS_CHANNEL_NAME}", "S3DataType": "S3Prefix"}}}]
        if has_scripts:
            request["InputDataConfig"].append({
                "ChannelName": SCRIPT_AND_DEPENDENCIES_CHANNEL_NAME, "DataSource": {"S3DataSource": {
                    "S3Uri": f"{prefix}/{SCRIPT_AND_DEPENDENCIES_CHANNEL_NAME}", "S3DataType": "S3Prefix"}}})
        output_path: Any = (Join(on="/", values=[s3_base, ExecutionVariables.PIPELINE_EXECUTION_ID, self.name,
                                                 RESULTS_FOLDER]) if ctx else s3_base)
        request["OutputDataConfig"] = {"S3OutputPath": output_path}
        request["AlgorithmSpecification"] = {"TrainingImage": settings.get("image_uri") or "local",
                                             "TrainingInputMode": "File", "ContainerEntrypoint": CONTAINER_ENTRYPOINT,
                                             "ContainerArguments": container_args}
        resources: dict[str, Any] = {"VolumeSizeInGB": settings.get("volume_size", 30),
                                     "InstanceCount": settings.get("instance_count", 1),
                                     "InstanceType": settings.get("instance_type") or "local"}
        if settings.get("keep_alive_period_in_seconds"):
            resources["KeepAlivePeriodInSeconds"] = settings["keep_alive_period_in_seconds"]
        request["ResourceConfig"] = resources
        if settings.get("encrypt_inter_container_traffic") is not None:
            request["EnableInterContainerTrafficEncryption"] = settings["encrypt_inter_container_traffic"]
        if settings.get("subnets") or settings.get("security_group_ids"):
            request["VpcConfig"] = {"Subnets": settings.get("subnets") or [],
                                    "SecurityGroupIds": settings.get("security_group_ids") or []}
        request["EnableManagedSpotTraining"] = bool(settings.get("use_spot_instances", False))
        request["Environment"] = dict(settings.get("environment_variables") or {})
        return trim_request_dict(request, "TrainingJobName", ctx)

    def _store_payload(self, sess: Any, step_base: str) -> tuple[str, bool]:
        """Pickle the function and its arguments where the runner looks for them, beside the requirements file
        and pre-execution script (the SDK's ``pre_exec_script_and_dependencies`` channel), all under
        ``<step_base>/<digest of all of them>/``. Returns that folder's name and whether the channel has
        anything in it."""
        by_value = local_modules()
        objects: dict[str, bytes] = {}
        digest = hashlib.sha256()
        for part, obj in (("function", self._func), ("arguments", (_to_refs(self._func_args),
                                                                   _to_refs(self._func_kwargs)))):
            try:
                body, canonical = _dumps_with_digest(obj, by_value)
            except Exception as exc:
                hint = "" if _has_cloudpickle() else " Install cloudpickle (pip install cloudpickle), which can."
                raise PipelineError(f"@step {self.name!r}: its {part} cannot be pickled ({exc}); define the function "
                                    f"at module level and pass picklable arguments.{hint}") from None
            objects[f"{part}/payload.pkl"] = body
            digest.update(f"{part}\0{canonical}\0".encode())
        scripts = self._scripts()
        for file_name, body in sorted(scripts.items()):
            key = f"{SCRIPT_AND_DEPENDENCIES_CHANNEL_NAME}/{file_name}"
            objects[key] = body
            digest.update(f"{key}\0{hashlib.sha256(body).hexdigest()}\0".encode())
        folder = digest.hexdigest()
        for key, body in objects.items():
            self._put_once(sess, f"{step_base}/{folder}/{key}", body)
        return folder, bool(scripts)

    def _scripts(self) -> dict[str, bytes]:
        """The requirements file and ``pre_exec.sh`` this step ships, read from the local files named."""
        settings = self._step_kwargs
        out: dict[str, bytes] = {}
        dependencies = settings.get("dependencies")
        if dependencies:
            path = Path(dependencies)
            if not path.is_file():
                raise PipelineError(f"@step {self.name!r}: no dependencies file named {dependencies!r} was found "
                                    f"(looked in {Path.cwd()}); give the path of a requirements.txt.")
            out[path.name] = path.read_bytes()
        commands = settings.get("pre_execution_commands")
        script = settings.get("pre_execution_script")
        if commands:
            out[PRE_EXECUTION_SCRIPT_NAME] = "".join(f"{c}\n" for c in commands).encode()
        elif script:
            path = Path(script)
            if not path.is_file():
                raise PipelineError(f"@step {self.name!r}: pre_execution_script {script!r} was not found "
                                    f"(looked in {Path.cwd()}).")
            out[PRE_EXECUTION_SCRIPT_NAME] = path.read_bytes()
        return out

    @staticmethod
    def _put_once(sess: Any, uri: str, body: bytes) -> None:
        """Store ``body`` at ``uri`` unless something is there already: the path names the content, and keeping
        the first build's bytes keeps the step's cache key (which fingerprints them) when a rebuild's pickle
        differs only in what the digest makes canonical."""
        from sluice.storage import S3Uri

        target = S3Uri.parse(uri)
        store = sess.store
        if not store.bucket_exists(target.bucket):
            store.create_bucket(target.bucket)
        if not store.exists(target.bucket, target.key):
            store.put(target.bucket, target.key, body)


def _job_name_prefix(func: Callable[..., Any] | None) -> str:
    name = getattr(func, "__name__", "function")
    name = re.sub(r"^[^a-zA-Z0-9]+", "", name)
    return re.sub(r"[^a-zA-Z0-9-]", "-", name) or "function"


def _to_refs(value: Any) -> Any:
    """``value`` with pipeline variables replaced by placeholders that pickle (the runner fills them in)."""
    if isinstance(value, DelayedReturn):
        return DelayedReturnRef(value._step.name, value._reference_path)
    if isinstance(value, Parameter):
        return PipelineVariableRef(serialize(value), value.parameter_type.value)
    if isinstance(value, PipelineVariable):
        return PipelineVariableRef(serialize(value))
    if type(value) is dict:
        return {k: _to_refs(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_to_refs(v) for v in value)
    return value


def _pipeline_variables(value: Any) -> list[Any]:
    """The pipeline variables inside ``value`` (into lists, tuples and dicts), in order."""
    if isinstance(value, PipelineVariable):
        return [value]
    if type(value) is dict:
        return [v for item in value.values() for v in _pipeline_variables(item)]
    if type(value) in (list, tuple):
        return [v for item in value for v in _pipeline_variables(item)]
    return []


def _check_arguments(name: str, values: tuple[Any, ...]) -> None:
    """Refuse pipeline variables a function step cannot pass to its function (as the SDK does)."""
    for value in _pipeline_variables(values):
        if isinstance(value, DelayedReturn | Parameter | ExecutionVariable):
            continue
        if isinstance(value, Properties) and isinstance(value.expr.get("Get"), str):
            continue
        raise PipelineError(
            f"@step {name!r}: an argument is {value!r}, which a function step cannot receive. Pass a parameter, "
            "an execution variable, a step property or another @step result (each arrives as its value), and "
            "compute Join or JsonGet values inside the function.")


class DelayedReturn(StepOutput):
    """The return value of a ``@step`` call; ``[i]`` / ``['key']`` reach inside it."""

    def __init__(self, function_step: _FunctionStep, reference_path: tuple[Any, ...] = ()) -> None:
        super().__init__(function_step)
        self._reference_path = reference_path

    def __getitem__(self, key: Any) -> DelayedReturn:
        return DelayedReturn(self._step, (*self._reference_path, ("__getitem__", key)))

    def _json_path(self) -> str:
        path = JSON_SERIALIZED_RESULT_KEY
        for _, key in self._reference_path:
            path += f"[{key}]" if isinstance(key, int) else f"['{key}']"
        return path

    def _to_json_get(self) -> JsonGet:
        root = self._step.s3_root_uri()
        uri = Join(on="/", values=[root, ExecutionVariables.PIPELINE_NAME, ExecutionVariables.PIPELINE_EXECUTION_ID,
                                   self._step.name, RESULTS_FOLDER, JSON_RESULTS_FILE])
        return JsonGet(s3_uri=uri, json_path=self._json_path(), step=self._step)

    @property
    def expr(self) -> dict[str, Any]:
        return self._to_json_get().expr


class _DelayedSequence(DelayedReturn):
    """A ``@step`` result typed as a tuple or list: indexed by position only."""

    def __getitem__(self, key: Any) -> DelayedReturn:
        if not isinstance(key, int):
            raise TypeError(f"Expected an integer, got {key!r}")
        return DelayedReturn(self._step, (*self._reference_path, ("__getitem__", key)))


def _delayed_return(function_step: _FunctionStep, hint: Any) -> DelayedReturn:
    origin = typing.get_origin(hint)
    if hint in (tuple, list) or origin in (tuple, list):
        return _DelayedSequence(function_step)
    return DelayedReturn(function_step)


def step(_func: Callable[..., Any] | None = None, *, name: str | None = None, display_name: str | None = None,
         description: str | None = None, retry_policies: list[RetryPolicy] | None = None,
         dependencies: str | None = None, pre_execution_commands: list[str] | None = None,
         pre_execution_script: str | None = None, environment_variables: dict[str, Any] | None = None,
         image_uri: Any = None, instance_count: Any = 1, instance_type: Any = None, job_conda_env: Any = None,
         job_name_prefix: str | None = None, keep_alive_period_in_seconds: Any = 0, max_retry_attempts: Any = 1,
         max_runtime_in_seconds: Any = 24 * 60 * 60, role: str | None = None, security_group_ids: Any = None,
         subnets: Any = None, tags: Any = None, volume_kms_key: Any = None, volume_size: Any = 30,
         encrypt_inter_container_traffic: Any = None, spark_config: Any = None, use_spot_instances: Any = False,
         max_wait_time_in_seconds: Any = None, s3_root_uri: str | None = None) -> Any:
    """Turn a function into a pipeline step: calling it returns a :class:`DelayedReturn` (nothing runs)."""
    if spark_config is not None:
        raise PipelineError("@step(spark_config=...) needs Spark, which sluice does not run.")
    if job_conda_env is not None:
        raise PipelineError("@step(job_conda_env=...) names a conda environment inside the job's image; sluice runs "
                            "no images or conda. Leave it out (the function runs in sluice's own Python), or map "
                            "image_uri to an interpreter in [images] of config.toml.")
    if pre_execution_commands is not None and pre_execution_script is not None:
        raise PipelineError("@step: give pre_execution_commands or pre_execution_script, not both.")
    if dependencies is not None:
        _check_dependencies(dependencies)
    settings = {k: v for k, v in {
        "dependencies": dependencies, "pre_execution_commands": pre_execution_commands,
        "pre_execution_script": pre_execution_script, "environment_variables": environment_variables,
        "image_uri": image_uri, "instance_count": instance_count, "instance_type": instance_type,
        "job_conda_env": job_conda_env, "job_name_prefix": job_name_prefix,
        "keep_alive_period_in_seconds": keep_alive_period_in_seconds, "max_retry_attempts": max_retry_attempts,
        "max_runtime_in_seconds": max_runtime_in_seconds, "role": role, "security_group_ids": security_group_ids,
        "subnets": subnets, "tags": tags, "volume_kms_key": volume_kms_key, "volume_size": volume_size,
        "encrypt_inter_container_traffic": encrypt_inter_container_traffic,
        "use_spot_instances": use_spot_instances, "max_wait_time_in_seconds": max_wait_time_in_seconds,
        "s3_root_uri": s3_root_uri}.items() if v is not None}

    def decorator(func: Callable[..., Any]) -> Callable[..., DelayedReturn]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> DelayedReturn:
            step_name = name or f"{_job_name_prefix(func)}-{uuid.uuid4().hex[:8]}"
            _check_arguments(step_name, (*args, *kwargs.values()))
            upstream: dict[int, Any] = {}
            for arg in _pipeline_variables((*args, *kwargs.values())):
                if isinstance(arg, DelayedReturn):
                    upstream[id(arg._step)] = arg._step
            function_step = _FunctionStep(step_name, display_name, description, retry_policies,
                                          list(upstream.values()) or None, func, args, kwargs, **settings)
            try:
                hint = typing.get_type_hints(func).get("return")
            except Exception:  # unresolvable annotations: treat the result as any value
                hint = None
            return _delayed_return(function_step, hint)

        return wrapper

    return decorator(_func) if _func is not None else decorator


def _check_dependencies(dependencies: Any) -> None:
    """Accept a pip requirements file; refuse the SDK's conda forms, which need conda in an image."""
    if not isinstance(dependencies, str | os.PathLike):
        raise PipelineError(f"@step(dependencies=...) takes the path of a requirements.txt, not {dependencies!r}.")
    text = os.fspath(dependencies)
    if text == "auto_capture" or text.endswith((".yml", ".yaml")):
        raise PipelineError(f"@step(dependencies={text!r}) asks for a conda environment, which sluice does not "
                            "run. Give a pip requirements.txt instead; it is installed with pip when the step runs.")
