"""``sluice.workflow.pipeline_context``: ``PipelineSession``, under which the facade builds steps instead of jobs.

With a ``PipelineSession``, ``processor.run(...)``, ``estimator.fit(...)``, ``tuner.fit(...)`` and
``transformer.transform(...)`` return step arguments and start nothing; ``model.create(...)`` and
``model.register(...)`` return the arguments of a ``ModelStep``. As in the SDK, a job method's arguments
are lazy: the method runs (with ``wait=False, logs=False``) when ``Pipeline.definition()`` compiles the
step, and its request reaches the session, which keeps it.

The seam with the facade is two pieces (the facade changes are listed in ``docs/pipelines.md``):

* :func:`runnable_by_pipeline`, the decorator on those public methods;
* ``Session._intercept_create_request(request, func_name) -> bool``, which ``Session.process``,
  ``Session.train``, ``Session.transform`` and ``HyperparameterTuner.fit`` call just before starting a job.
  A plain ``Session`` answers False (start the job); a ``PipelineSession`` keeps the request and answers True.

Model requests are built here from the model's public attributes (``prepare_container_def()``, ``role``,
``vpc_config``...), because recording a model has no job to intercept. A model with ``entry_point`` whose
``model_data`` is known only when the pipeline runs is marked ``need_runtime_repack``, as in the SDK: its
``ModelStep`` then adds the repack training step (:mod:`sluice.workflow.model_step`).

Step arguments must come out the same every time a pipeline is built, or every upsert would be a cache miss
(SDK issue #2736). So while a step compiles, the facade puts what it uploads where only its content decides
the path (contract 5.15): code under ``<bucket>/<prefix?>/<pipeline>/code/<sha256>/<file>``
(:func:`stage_pipeline_code`, with :func:`reproducible_tar_gz` for bundles, which are byte-identical for
identical files), local inputs under ``<pipeline>/<step>/input/<name>`` (:func:`pipeline_step_location`),
and no job name in script-mode hyperparameters. Standalone runs keep their job-name layout.
"""

from __future__ import annotations

import copy
import functools
import gzip
import hashlib
import inspect
import io
import logging
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.errors import PipelineError
from sluice.session import Session, get_execution_role

if TYPE_CHECKING:
    from sluice.workflow.utilities import StepCompilationContext

__all__ = [
    "LocalPipelineSession",
    "PipelineSession",
    "building_step",
    "execute_job_functions",
    "needs_runtime_repack",
    "pipeline_step_location",
    "reproducible_tar_gz",
    "retrieve_caller_name",
    "runnable_by_pipeline",
    "stage_pipeline_code",
]

log = logging.getLogger("sluice")

_CALLERS = {"Processor": "process", "EstimatorBase": "train", "Transformer": "transform",
            "HyperparameterTuner": "create_tuning_job"}
_JOB_KEYS = {"process": "ProcessingJobName", "train": "TrainingJobName", "transform": "TransformJobName",
             "create_tuning_job": "HyperParameterTuningJobName"}


class _StepArguments:
    """What a job method returns under a PipelineSession: the call, to be made when the step compiles."""

    def __init__(self, caller_name: str | None = None, func: Callable[..., Any] | None = None, *func_args: Any,
                 **func_kwargs: Any) -> None:
        self.caller_name = caller_name
        self.func = func
        self.func_args = func_args
        self.func_kwargs = func_kwargs


class _JobStepArguments(_StepArguments):
    """A captured ``Create*Job`` request (``args``) and the session method that produced it."""

    def __init__(self, caller_name: str, args: dict[str, Any]) -> None:
        super().__init__(caller_name)
        self.args = args


class _ModelStepArguments(_StepArguments):
    """What ``model.create()`` / ``model.register()`` return under a PipelineSession (exactly one request set)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.create_model_request: dict[str, Any] | None = None
        self.create_model_package_request: dict[str, Any] | None = None
        self.need_runtime_repack: set[int] = set()
        self.runtime_repack_output_prefix: str | None = None


class PipelineSession(Session):
    """A Session whose job requests become pipeline step arguments; nothing runs under it."""

    def __init__(self, boto_session: Any = None, sagemaker_client: Any = None, default_bucket: str | None = None,
                 settings: Any = None, sagemaker_config: dict | None = None, default_bucket_prefix: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(boto_session=boto_session, sagemaker_client=sagemaker_client, default_bucket=default_bucket,
                         settings=settings, sagemaker_config=sagemaker_config,
                         default_bucket_prefix=default_bucket_prefix, **kwargs)
        self._context: _StepArguments | None = None
        self._defaulted: set[str] = set()  # default locations already moved; facades keep them on their objects

    @property
    def context(self) -> _StepArguments | None:
        """The request captured by the last intercepted call (read once by the step being compiled)."""
        return self._context

    @context.setter
    def context(self, value: _StepArguments | None) -> None:
        self._context = value

    def _intercept_create_request(self, request: dict[str, Any], func_name: str) -> bool:
        """Keep ``request`` as the step's arguments instead of starting the job; always True here."""
        self._context = _JobStepArguments(func_name, _pipeline_layout(self, request, func_name))
        return True

    def init_model_step_arguments(self, model: Any) -> None:
        if not isinstance(self._context, _ModelStepArguments):
            self._context = _ModelStepArguments(model)


class LocalPipelineSession(PipelineSession):
    """The SDK's session for local pipelines; in sluice every session is local, so it is a PipelineSession."""

    def __init__(self, boto_session: Any = None, default_bucket: str | None = None, s3_endpoint_url: str | None = None,
                 disable_local_code: bool = False, default_bucket_prefix: str | None = None, **kwargs: Any) -> None:
        super().__init__(boto_session=boto_session, default_bucket=default_bucket,
                         default_bucket_prefix=default_bucket_prefix, **kwargs)
        self.local_mode = True


def retrieve_caller_name(job_instance: Any) -> str | None:
    """The session method a job object's request goes through: process, train, transform, create_tuning_job.

    A class may name it with a ``_pipeline_caller`` attribute; otherwise it is read from the class's bases.
    """
    named = getattr(job_instance, "_pipeline_caller", None)
    if isinstance(named, str):
        return named
    for cls in type(job_instance).__mro__:
        if cls.__name__ in _CALLERS and cls.__module__.startswith("sluice."):
            return _CALLERS[cls.__name__]
    return None


def runnable_by_pipeline(run_func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a facade method that starts a job (or records a model) so a PipelineSession gets step arguments.

    With any other session the method runs unchanged. Under a PipelineSession a job method returns a lazy
    :class:`_StepArguments` (``wait`` and ``logs`` forced off); ``create`` / ``register`` on a model return
    :class:`_ModelStepArguments` at once.
    """

    @functools.wraps(run_func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        self_instance = args[0]
        session = getattr(self_instance, "sagemaker_session", None)
        if not isinstance(session, PipelineSession):
            return run_func(*args, **kwargs)
        if run_func.__name__ in ("create", "register"):
            return _model_step_arguments(run_func, args, kwargs)
        params = list(inspect.signature(run_func).parameters)
        arg_list = list(args)
        for i, name in enumerate(params[: len(arg_list)]):
            if name in ("wait", "logs"):
                arg_list[i] = False
        for name in ("wait", "logs"):
            if name in params and params.index(name) >= len(arg_list):
                kwargs[name] = False
        log.info("Running within a PipelineSession: no job starts, no wait, no logs; %s() becomes step arguments.",
                 run_func.__qualname__)
        return _StepArguments(retrieve_caller_name(self_instance), run_func, *arg_list, **kwargs)

    return wrapper


def execute_job_functions(step_args: _StepArguments) -> dict[str, Any]:
    """Make the deferred call and return the request the session captured (a deep copy, pipeline variables kept)."""
    if isinstance(step_args, _JobStepArguments):
        return copy.deepcopy(step_args.args)
    if step_args.func is None or not step_args.func_args:
        raise PipelineError("these step_args hold no call; get them from processor.run(), estimator.fit(), "
                            "tuner.fit() or transformer.transform() under a PipelineSession.")
    owner = step_args.func_args[0]
    session = getattr(owner, "sagemaker_session", None)
    if not isinstance(session, PipelineSession):
        raise PipelineError(f"{type(owner).__name__} must use a PipelineSession to build a step "
                            "(sagemaker_session=PipelineSession()); with another session it would start a job.")
    func = getattr(step_args.func, "__wrapped__", step_args.func)
    session.context = None
    func(*step_args.func_args, **step_args.func_kwargs)
    captured, session.context = session.context, None
    if not isinstance(captured, _JobStepArguments):
        raise PipelineError(f"{type(owner).__name__}.{func.__name__}() did not hand its request to the "
                            "PipelineSession, so there are no step arguments. The facade hook "
                            "(Session._intercept_create_request) is missing from this build; see docs/pipelines.md.")
    step_args.caller_name = captured.caller_name
    return copy.deepcopy(captured.args)


# ---- the pipeline layout of default locations --------------------------------------------------------------

def _s3(*parts: str) -> str:
    return "s3://" + "/".join(p.strip("/") for p in parts if p)


def building_step(session: Any) -> StepCompilationContext | None:
    """The step being compiled when ``session`` builds it inside ``Pipeline.definition()``; None otherwise."""
    from sluice.workflow.utilities import load_step_compilation_context

    ctx = load_step_compilation_context()
    return ctx if ctx is not None and isinstance(session, PipelineSession) else None


def _under(base: str, *parts: str) -> str:
    """``base`` (an ``s3://`` URI) joined with ``parts``, one ``/`` between each."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts if p)])


def _default_root(session: Session) -> str:
    """``s3://<default bucket>[/<default prefix>]``."""
    return _s3(session.default_bucket(), session.default_bucket_prefix or "")


def pipeline_step_location(session: Session, *parts: str, base: str | None = None) -> str | None:
    """``s3://<bucket>/<prefix?>/<pipeline>/<step>/<parts>`` while a step compiles (where the SDK puts a local
    processing input, contract 5.15); None for a standalone run. ``base`` (a ``code_location``) replaces
    ``s3://<bucket>/<prefix?>``."""
    ctx = building_step(session)
    if ctx is None:
        return None
    return _under(base or _default_root(session), ctx.pipeline_name, ctx.step_name, *parts)


def stage_pipeline_code(session: Session, data: bytes, filename: str, base: str | None = None) -> str | None:
    """While a step compiles: store ``data`` at ``<base>/<pipeline>/code/<sha256 of data>/<filename>`` and return
    that URI; None for a standalone run (the caller then uploads under the job's name, as before).

    ``base`` is the facade's ``code_location`` (default ``s3://<default bucket>[/<default prefix>]``). The path
    names the bytes, so building the same pipeline again gives the same step arguments, and an object already
    there is left alone: it holds exactly these bytes.
    """
    ctx = building_step(session)
    if ctx is None:
        return None
    from sluice.storage import S3Uri

    target = S3Uri.parse(_under(base or _default_root(session), ctx.pipeline_name, "code",
                                hashlib.sha256(data).hexdigest(), filename))
    store = session.store
    if not store.bucket_exists(target.bucket):
        store.create_bucket(target.bucket)
    if not store.exists(target.bucket, target.key):
        store.put(target.bucket, target.key, data)
    return str(target)


#: The modification time stored for every member of a code bundle: 1980-01-02 UTC, the first day every
#: time zone can write into a zip file, so tools that re-pack the code keep working.
_BUNDLE_MTIME = 315619200


def _normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = _BUNDLE_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def reproducible_tar_gz(members: Iterable[tuple[Path | bytes, str]]) -> bytes:
    """A ``.tar.gz`` of ``(path or bytes, name in the archive)`` pairs (a directory is added with everything
    below it; bytes become a file of mode 0644) whose bytes depend only on the names, contents and permission
    bits: no timestamps, no owners.

    That is what lets a code bundle be content-addressed (:func:`stage_pipeline_code`).
    """
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for source, arcname in members:
            if isinstance(source, bytes):
                info = _normalized(tarfile.TarInfo(arcname))
                info.size, info.mode = len(source), 0o644
                tar.addfile(info, io.BytesIO(source))
            else:
                tar.add(source, arcname=arcname, filter=_normalized)
    return buf.getvalue()


def _pipeline_layout(session: PipelineSession, request: dict[str, Any], func_name: str) -> dict[str, Any]:
    """Move default output locations from the standalone layout to the pipeline one (contract 5.15).

    A processing output the facade defaulted to ``s3://<bucket>/<prefix>/<job>/output/<name>`` becomes
    ``Join("/", ["s3:/", bucket, prefix, <pipeline>, ExecutionId, <step>, "output", name])``, a transform
    output ``s3://<bucket>/<prefix>/<job>`` likewise, so every execution writes to its own place, as in the SDK.
    Locations the user chose are left alone. Outside ``Pipeline.definition()`` nothing changes. (Code and local
    inputs need no moving: the facade already stages them at their pipeline locations.)
    """
    from sluice.workflow.execution_variables import ExecutionVariables
    from sluice.workflow.functions import Join
    from sluice.workflow.utilities import load_step_compilation_context

    ctx = load_step_compilation_context()
    job = request.get(_JOB_KEYS.get(func_name, ""))
    if ctx is None or not isinstance(job, str):
        return request
    bucket = session.default_bucket()
    prefix = [session.default_bucket_prefix] if session.default_bucket_prefix else []
    where = ["s3:/", bucket, *prefix, ctx.pipeline_name, ExecutionVariables.PIPELINE_EXECUTION_ID, ctx.step_name]
    if func_name == "process":
        for output in (request.get("ProcessingOutputConfig") or {}).get("Outputs", []):
            s3, name = output.get("S3Output"), output.get("OutputName")
            uri = s3.get("S3Uri") if s3 else None
            if isinstance(uri, str) and (uri == _s3(bucket, *prefix, job, "output", name) or uri in session._defaulted):
                session._defaulted.add(uri)
                s3["S3Uri"] = Join(on="/", values=[*where, "output", name])
    elif func_name == "transform":
        out = request.get("TransformOutput") or {}
        if isinstance(out.get("S3OutputPath"), str) and out["S3OutputPath"].rstrip("/") == _s3(bucket, *prefix, job):
            out["S3OutputPath"] = Join(on="/", values=where)
    return request


# ---- model requests ----------------------------------------------------------------------------------------

def _model_step_arguments(run_func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    bound = inspect.signature(run_func).bind(*args, **kwargs)
    arguments = dict(bound.arguments)
    model = arguments.pop("self")
    extra = arguments.pop("kwargs", {}) if "kwargs" in inspect.signature(run_func).parameters else {}
    arguments.update(extra)
    step_args = _ModelStepArguments(model)
    if run_func.__name__ == "create":
        step_args.create_model_request = model_create_request(model, **arguments, runtime_repack=True)
        step_args.caller_name = "create_model"
    else:
        step_args.create_model_package_request = model_package_request(model, **arguments, runtime_repack=True)
        step_args.caller_name = "create_model_package_from_containers"
    if needs_runtime_repack(model):
        # The container's ModelDataUrl is still the training step's archive; ModelStep adds the repack step
        # and points the container at that step's ModelArtifacts.S3ModelArtifacts (SDK model.py, _upload_code).
        step_args.need_runtime_repack.add(id(model))
        step_args.runtime_repack_output_prefix = getattr(model, "code_location", None)
    return step_args


def needs_runtime_repack(model: Any) -> bool:
    """Whether ``model`` needs a repack step: inference code (``entry_point``) for a model archive known only
    when the pipeline runs. A fixed ``model_data`` is repacked when the step is built instead."""
    from sluice.workflow import is_pipeline_variable

    return bool(getattr(model, "entry_point", None)) and is_pipeline_variable(getattr(model, "model_data", None))


def _check_no_repack(model: Any, runtime_repack: bool) -> None:
    if runtime_repack or not needs_runtime_repack(model):
        return
    raise PipelineError(
        f"model {getattr(model, 'name', None) or type(model).__name__} has entry_point {model.entry_point!r} and a "
        "model_data known only when the pipeline runs, so its code must be repacked into that archive by a repack "
        "step. Build the step as ModelStep(name, step_args=model.create(...)) or ModelStep(name, "
        "step_args=model.register(...)): ModelStep adds the repack step, as in the SageMaker SDK.")


def _request_dict(value: Any) -> Any:
    return value._to_request_dict() if hasattr(value, "_to_request_dict") else value


def model_create_request(model: Any, instance_type: str | None = None, accelerator_type: str | None = None,
                         serverless_inference_config: Any = None, tags: list | None = None,
                         runtime_repack: bool = False, **_: Any) -> dict[str, Any]:
    """The ``CreateModel`` request ``model.create()`` would send (``ModelName`` included; the step trims it).

    A model that needs a repack step (:func:`needs_runtime_repack`) is refused unless ``runtime_repack``
    says a ModelStep will add one.
    """
    _check_no_repack(model, runtime_repack)
    container = model.prepare_container_def(instance_type)
    from sluice.jobs.naming import base_name_from_image, name_from_base

    name = getattr(model, "name", None) or name_from_base(base_name_from_image(model.image_uri, default="model"))
    request: dict[str, Any] = {"ModelName": name,
                               "ExecutionRoleArn": model.role or get_execution_role(), "PrimaryContainer": container}
    if tags:
        request["Tags"] = tags
    if getattr(model, "vpc_config", None):
        request["VpcConfig"] = model.vpc_config
    isolation = getattr(model, "enable_network_isolation", False)
    if callable(isolation):
        isolation = isolation()
    if isolation:
        request["EnableNetworkIsolation"] = True
    return request


def model_package_request(
    model: Any, content_types: list[str] | None = None, response_types: list[str] | None = None,
    inference_instances: list[str] | None = None, transform_instances: list[str] | None = None,
    model_package_name: str | None = None, model_package_group_name: str | None = None, image_uri: str | None = None,
    model_metrics: Any = None, metadata_properties: Any = None, marketplace_cert: bool = False,
    approval_status: Any = None, description: str | None = None, drift_check_baselines: Any = None,
    customer_metadata_properties: dict[str, str] | None = None, validation_specification: Any = None,
    domain: str | None = None, task: str | None = None, sample_payload_url: str | None = None,
    framework: str | None = None, framework_version: str | None = None, tags: list | None = None,
    runtime_repack: bool = False, **_: Any,
) -> dict[str, Any]:
    """The ``CreateModelPackage`` request ``model.register()`` would send, in the SDK's field order (a model
    that needs a repack step is refused unless ``runtime_repack``, as in :func:`model_create_request`)."""
    if not (model_package_group_name or model_package_name):
        raise PipelineError("register() needs model_package_group_name (a versioned group) or model_package_name.")
    _check_no_repack(model, runtime_repack)
    container = model.prepare_container_def()
    if image_uri:
        container["Image"] = image_uri
    if framework:
        container["Framework"] = framework.upper()
        if framework_version:
            container["FrameworkVersion"] = framework_version
    request: dict[str, Any] = {}
    for key, value in (("ModelPackageName", model_package_name), ("ModelPackageGroupName", model_package_group_name),
                       ("ModelPackageDescription", description), ("Tags", tags),
                       ("ModelMetrics", _request_dict(model_metrics)),
                       ("DriftCheckBaselines", _request_dict(drift_check_baselines)),
                       ("MetadataProperties", _request_dict(metadata_properties)),
                       ("CustomerMetadataProperties", customer_metadata_properties),
                       ("ValidationSpecification", _request_dict(validation_specification)),
                       ("Domain", domain), ("SamplePayloadUrl", sample_payload_url), ("Task", task)):
        if value:
            request[key] = value
    spec: dict[str, Any] = {"Containers": [container]}
    for key, value in (("SupportedContentTypes", content_types), ("SupportedResponseMIMETypes", response_types),
                       ("SupportedRealtimeInferenceInstanceTypes", inference_instances),
                       ("SupportedTransformInstanceTypes", transform_instances)):
        if value is not None:
            spec[key] = value
    request["InferenceSpecification"] = spec
    request["CertifyForMarketplace"] = marketplace_cert
    request["ModelApprovalStatus"] = approval_status if approval_status is not None else "PendingManualApproval"
    return request
