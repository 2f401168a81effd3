"""Start a batch transform job: every check first, then the record, then one instance per host.

Everything that can be refused is refused before the job is recorded: the request (shape, limits,
filters, join rules), the model (it must be recorded, its ``model.tar.gz`` must exist), the model
image's environment, the input (listed and sharded: a missing prefix or a bad manifest stops here)
and the output bucket.

Each instance is an :class:`~sluice.runtime.instance.InstanceTask`:

* ``code`` unpacks the model's ``model.tar.gz`` at ``/opt/ml/model``;
* a File channel stages the instance's share of the input at ``/opt/ml/transform/input``, every object
  at its path relative to the prefix (nested prefixes included); objects are spread over instances by
  the ``ShardedByS3Key`` rule (key order, object ``i`` to instance ``i mod n``), since the service
  "partitions the Amazon S3 objects in the input by key";
* the environment is the image's, then the model's and the job's ``Environment``, then what the platform
  gives a batch container (``SAGEMAKER_BATCH=true``, ``SAGEMAKER_MAX_PAYLOAD_IN_MB``,
  ``SAGEMAKER_BATCH_STRATEGY``, ``SAGEMAKER_MAX_CONCURRENT_TRANSFORMS``), so the model server and its
  handlers see them; a model with no inference code on the XGBoost image also gets its algorithm's default
  Accept, ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=text/csv``, unless the model or the job sets it;
* the entrypoint is the batch loop, ``python -m sluice.serving.batch`` (:mod:`sluice.serving.batch`),
  which starts the model server inside the same sandbox and writes ``<object>.out`` files under
  ``/opt/ml/transform/output``;
* that directory is an EndOfJob output to ``S3OutputPath`` flagged ``upload_on_failure``: every
  finished ``.out`` is uploaded at the input's relative path even when another object failed the job.

Instances do not fail fast: a transform instance that failed some objects has still written the others,
so its siblings are left to finish their own objects (see :class:`_FinishAll`) before the job is
``Failed`` with a reason that names every failed object.
"""

from __future__ import annotations

import signal
from typing import Any

from sluice.channels.plan import plan_channel
from sluice.channels.spec import ChannelSpec, DataType, Distribution, InputMode, OutputSpec, UploadMode
from sluice.config import Config
from sluice.errors import SpecError
from sluice.jobs.instance_types import create_job_within_quota
from sluice.jobs.layout import InstanceLayout, host_names, job_dir
from sluice.jobs.status import JobStatus
from sluice.jobs.transform import KIND, NO_TIME_LIMIT_SECONDS, TransformJobSpec, describe_transform_job
from sluice.metadata import open_metadata
from sluice.runtime.backend import Backend, InstanceHandle, get_backend
from sluice.runtime.driver import JobDriver, JobTimes
from sluice.runtime.environments import resolve_image
from sluice.runtime.feedback import ConsoleFeedback
from sluice.runtime.instance import CodeBundle, InstanceEvents, InstanceResult, InstanceTask, base_environment
from sluice.runtime.processing import RunningJob
from sluice.runtime.sandbox import detect_sandbox
from sluice.serving.batch import BatchConfig
from sluice.serving.defaults import algorithm_mode_env
from sluice.storage import S3Uri, store_for

__all__ = ["INPUT_DIR", "MODEL_DIR", "OUTPUT_DIR", "start_transform_job"]

MODEL_DIR = "/opt/ml/model"
TRANSFORM_ROOT = "/opt/ml/transform"
INPUT_DIR = f"{TRANSFORM_ROOT}/input"
OUTPUT_DIR = f"{TRANSFORM_ROOT}/output"
CONFIG_PATH = f"{TRANSFORM_ROOT}/config.json"
TRANSFORM_DIRS = (MODEL_DIR, "/opt/ml/output", TRANSFORM_ROOT)
_REASON_LIMIT = 1024


class _Held(InstanceHandle):
    """A handle that reports a failure only once every instance of the job has ended."""

    def __init__(self, inner: InstanceHandle, group: _FinishAll) -> None:
        self.inner, self.group, self.host = inner, group, inner.host
        self.result: InstanceResult | None = None

    def _poll(self, timeout: float | None) -> InstanceResult | None:
        if self.result is None:
            self.result = self.inner.wait(timeout)
        return self.result

    def wait(self, timeout: float | None = None) -> InstanceResult | None:
        result = self._poll(timeout)
        if result is None or result.succeeded:
            return result
        if timeout is None:
            for h in self.group.handles:
                h._poll(None)
            return result
        running = [h for h in self.group.handles if h._poll(0) is None]
        if running:
            running[0]._poll(timeout)  # block on a sibling rather than return at once, so the driver never spins
        return result if all(h._poll(0) is not None for h in self.group.handles) else None

    def stop(self) -> None:
        self.inner.stop()

    def upload_outputs(self, success: bool) -> list[str]:
        return self.inner.upload_outputs(success)


class _FinishAll(Backend):
    """Wraps a backend so that a failed instance does not stop its siblings (the driver stops the rest as
    soon as one instance reports a failure; a transform instance's failure is about its own objects)."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.handles: list[_Held] = []

    def validate(self, tasks: list[InstanceTask]) -> None:
        self.inner.validate(tasks)

    def start(self, task: InstanceTask, events: InstanceEvents) -> InstanceHandle:
        handle = _Held(self.inner.start(task, events), self)
        self.handles.append(handle)
        return handle

    def failure_reason(self) -> str | None:
        """Every failed instance's reason in one ``FailureReason`` (the driver keeps only the first's)."""
        failed = [h.result for h in self.handles if h.result is not None and not h.result.succeeded]
        messages = [f"{r.host}: {r.message}" for r in failed if r.message]
        if len(failed) < 2 or not messages:
            return None
        return ("AlgorithmError: " + "; ".join(messages))[:_REASON_LIMIT]


def start_transform_job(
    request: dict[str, Any], config: Config, *, show_progress: bool = False, show_logs: bool = False,
    backend: str = "local",
) -> RunningJob:
    """Validate ``request`` (a ``CreateTransformJob`` dict), record the job and start its instances."""
    store = store_for(config)
    metadata = open_metadata(config.database_url)
    spec = TransformJobSpec.from_request(request, config, metadata=metadata, store=store)
    environment = resolve_image(spec.image_uri, config)
    environment.check()
    out_bucket = S3Uri.parse(spec.output_path).bucket
    if not store.bucket_exists(out_bucket):
        raise SpecError(f"transform job {spec.name!r}: the output path {spec.output_path} is in bucket "
                        f"{out_bucket!r}, which does not exist; create it first (Session.default_bucket() creates "
                        "the default one).")
    n = spec.instance_count
    channel = ChannelSpec(
        name="input", s3_uri=spec.input_uri, local_path=INPUT_DIR, data_type=DataType(spec.data_type),
        input_mode=InputMode.FILE, distribution=Distribution.SHARDED_BY_S3_KEY, content_type=spec.content_type,
    )
    plan = plan_channel(channel, store, n)
    output = OutputSpec("output", spec.output_path, OUTPUT_DIR, UploadMode.END_OF_JOB, upload_on_failure=True)
    sandbox = detect_sandbox(config.sandbox)
    hosts = host_names(n)
    root = job_dir(config.jobs_root, spec.name)
    record = describe_transform_job(spec, str(JobStatus.IN_PROGRESS))
    env = base_environment(config.home, environment)
    env["SLUICE_FRAMEWORK"] = environment.name  # which default model loader the server tries first
    container_env = spec.container_env()
    env.update(container_env)
    env.update(algorithm_mode_env(environment.name, container_env))
    code = CodeBundle(spec.model_data_url, MODEL_DIR, str(config.home / "deps"), environment.python,
                      requirements="code/requirements.txt") \
        if spec.model_data_url else None
    argv = ["python", "-m", "sluice.serving.batch", "--config", CONFIG_PATH]
    tasks = []
    for i, host in enumerate(hosts):
        share = plan.for_instance(i)
        batch = BatchConfig(
            input_dir=INPUT_DIR, output_dir=OUTPUT_DIR, objects=[o.rel_path for o in share.objects],
            split_type=spec.split_type.value,
            batch_strategy=spec.batch_strategy.value if spec.batch_strategy else None,
            max_payload_mb=spec.max_payload_mb, max_concurrent_transforms=spec.max_concurrent_transforms,
            content_type=spec.content_type, accept=spec.accept, assemble_with=spec.assemble_with, gzip=spec.gzip,
            input_filter=spec.input_filter, output_filter=spec.output_filter, join_source=spec.join_source,
            invocations_timeout_seconds=spec.invocations_timeout_seconds,
            invocations_max_retries=spec.invocations_max_retries,
            worker_command=["python", "-m", "sluice.serving.worker"],
        )
        tasks.append(InstanceTask(
            job_name=spec.name,
            layout=InstanceLayout(host, i, root / host),
            store=store,
            channels=[share],
            outputs=[output],
            argv=argv,
            env=env,
            config_files={CONFIG_PATH: batch.dump()},
            sandbox=sandbox,
            stop_signal=signal.SIGTERM,
            dirs=TRANSFORM_DIRS,
            code=code,
        ))
    runtime = _FinishAll(get_backend(backend))
    runtime.validate(tasks)

    create_job_within_quota(metadata, KIND, request, record, config)  # refuses if the quota is used up
    display = None
    events = InstanceEvents()
    if show_progress or show_logs:
        total_objects = sum(len(s) for s in plan.shards)
        total_bytes = sum(plan.bytes_for(i) for i in range(n))
        display = ConsoleFeedback(spec.name, hosts, total_objects, total_bytes, show_logs=show_logs)
        display.__enter__()
        events = display.events()

    def final_extras(status: JobStatus, ending: dict[str, Any]) -> dict[str, Any]:
        reason = runtime.failure_reason() if status is JobStatus.FAILED else None
        return {"FailureReason": reason} if reason else {}

    driver = JobDriver(
        kind=KIND, name=spec.name, status_key="TransformJobStatus",
        times=JobTimes("TransformStartTime", "TransformEndTime"), tasks=tasks, backend=runtime,
        metadata=metadata, record=record, max_runtime_seconds=NO_TIME_LIMIT_SECONDS, events=events,
        final_extras=final_extras,
    )
    driver.start()
    return RunningJob(spec.name, driver, display)
