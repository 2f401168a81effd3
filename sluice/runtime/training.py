"""Start a training job: the script-mode container contract, without a container.

As for processing, everything is checked before the job is recorded: the request, the image's
environment, every channel (resolved and sharded), the code bundle (it must exist and contain the
entry point) and the output and checkpoint buckets. Each instance then gets ``/opt/ml/code`` unpacked,
``hyperparameters.json``, ``inputdataconfig.json`` and ``resourceconfig.json``, the toolkit's ``SM_*``
variables, and the entry point launched directly with ``--key value`` arguments. Metric regexes are
matched on log lines as they stream. When every instance succeeds, ``/opt/ml/model`` (merged across
instances) becomes ``<output_path>/<job>/output/model.tar.gz`` and ``/opt/ml/output/data`` becomes
``output.tar.gz``.

A job with no entry point runs its image's built-in algorithm (:mod:`sluice.runtime.algorithms`; only the
XGBoost image has one), on one instance, with the algorithm's metric definitions when the request has none,
and with the algorithm's own class (``ClientError``) kept on its failures. On any other image it is refused.
"""

from __future__ import annotations

import io
import logging
import re
import signal
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

from sluice.channels.plan import plan_channel
from sluice.config import Config
from sluice.errors import SpecError
from sluice.jobs.instance_types import create_job_within_quota
from sluice.jobs.layout import TRAINING_DIRS, InstanceLayout, host_names, job_dir
from sluice.jobs.status import JobStatus
from sluice.jobs.training import (
    CODE_DIR,
    KIND,
    NO_ENTRY_POINT,
    TrainingJobSpec,
    describe_training_job,
    entry_command,
    input_data_config,
    num_cpus_for,
    refusal,
    to_cmd_args,
    training_env_vars,
    user_hyperparameters,
)
from sluice.metadata import MetricPoint, open_metadata
from sluice.runtime.algorithms import builtin_algorithm
from sluice.runtime.backend import get_backend
from sluice.runtime.driver import JobDriver, JobTimes
from sluice.runtime.environments import Environment, resolve_image
from sluice.runtime.feedback import ConsoleFeedback
from sluice.runtime.instance import CheckpointSync, CodeBundle, InstanceEvents, InstanceTask, base_environment
from sluice.runtime.processing import RunningJob
from sluice.runtime.sandbox import detect_sandbox
from sluice.storage import ObjectStore, S3Uri, store_for

__all__ = ["MetricWatcher", "start_training_job"]

log = logging.getLogger("sluice.runtime")

_SECONDARY = {JobStatus.COMPLETED: "Completed", JobStatus.FAILED: "Failed", JobStatus.STOPPED: "Stopped"}


class MetricWatcher:
    """Matches ``metric_definitions`` on log lines as they stream; keeps the series and the last values."""

    def __init__(self, definitions: list[tuple[str, str]], record: Any = None) -> None:
        self._compiled = []
        for name, regex in definitions:
            try:
                self._compiled.append((name, re.compile(regex)))
            except re.error as exc:
                raise SpecError(
                    f"metric {name!r}: regex {regex!r} does not compile ({exc}); fix MetricDefinitions."
                ) from None
        self._record = record  # called with a list of MetricPoint to persist them
        self._lock = threading.Lock()
        self.last: dict[str, MetricPoint] = {}

    def feed(self, host: str, line: str) -> None:
        points = []
        for name, pattern in self._compiled:
            match = pattern.search(line)
            if not match:
                continue
            try:
                value = float(match.group(1))
            except (IndexError, ValueError):
                continue
            points.append(MetricPoint(name, value, time.time(), host))
        if points:
            with self._lock:
                for p in points:
                    self.last[p.metric] = p
            if self._record is not None:
                self._record(points)

    def final_metric_data_list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"MetricName": p.metric, "Value": p.value, "Timestamp": p.timestamp}
                    for p in sorted(self.last.values(), key=lambda p: p.metric)]


def _read_code_listing(store: ObjectStore, uri: str) -> set[str]:
    """Top-level names in the code bundle; refuses a missing or unreadable bundle before anything starts."""
    try:
        target = S3Uri.parse(uri)
        data = store.get_bytes(target.bucket, target.key)
    except Exception as exc:
        raise SpecError(f"the code bundle {uri} (sagemaker_submit_directory) cannot be read: {exc}") from None
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            return {m.name.lstrip("./").split("/")[0] for m in tar.getmembers() if m.name.lstrip("./")}
    except tarfile.TarError as exc:
        raise SpecError(f"the code bundle {uri} is not a tar.gz ({exc}); upload a sourcedir.tar.gz.") from None


def _check_bucket(store: ObjectStore, uri: str, what: str) -> None:
    bucket = S3Uri.parse(uri).bucket
    if not store.bucket_exists(bucket):
        raise SpecError(f"{what} {uri} is in bucket {bucket!r}, which does not exist; create it first "
                        "(Session.default_bucket() creates the default one).")


def _pack(dirs: list[Path], compress: bool) -> bytes | None:
    """One tar (gzip unless ``compress`` is false) of the files under ``dirs``, merged in host order."""
    files = [(d, p) for d in dirs if d.is_dir() for p in sorted(d.rglob("*")) if p.is_file() and not p.is_symlink()]
    buf = io.BytesIO()
    options = {"compresslevel": 6} if compress else {}  # tarfile's default 9 is slow on large models
    with tarfile.open(fileobj=buf, mode="w:gz" if compress else "w", **options) as tar:
        seen: set[str] = set()
        for root, path in files:
            arc = path.relative_to(root).as_posix()
            if arc in seen:
                continue  # the first host's file wins; the contract asks hosts not to clash
            seen.add(arc)
            tar.add(path, arcname=arc)
    return buf.getvalue()


def _algorithm_reason(reason: str) -> str:
    """A built-in algorithm classifies its own failures (``ClientError: num_round is required``): keep its class
    rather than the ``AlgorithmError:`` that any failure file gets."""
    prefix = "AlgorithmError: "
    inner = reason[len(prefix):] if reason.startswith(prefix) else ""
    return inner if inner.startswith(("ClientError: ", "AlgorithmError: ")) else reason


def check_runs_without_entry_point(spec: TrainingJobSpec, environment: Environment) -> None:
    """The rules for a training job that names no entry point (also checked once per tuning job, for its trials):
    only an image with a built-in algorithm (on one instance) or with its own ``train`` program runs it."""
    if not spec.runs_builtin_algorithm:
        return
    algorithm = builtin_algorithm(environment)
    if algorithm is None and not environment.train:
        raise refusal(spec.name, [f"{NO_ENTRY_POINT} (image {spec.image_uri or 'local'!r} maps to environment "
                                  f"{environment.name!r}.)"])
    if algorithm is not None and spec.instance_count > 1:
        raise refusal(spec.name, [f"the built-in {algorithm.name} algorithm runs on one instance in sluice "
                                  f"(distributed training is not available yet); use instance_count=1, not "
                                  f"{spec.instance_count}."])


def start_training_job(
    request: dict[str, Any], config: Config, *, show_progress: bool = False, show_logs: bool = False,
    backend: str = "local", record_extras: dict[str, Any] | None = None,
) -> RunningJob:
    """Validate ``request`` (a ``CreateTrainingJob`` dict), record the job and start its instances.

    ``record_extras`` are fields of the Describe record that the request cannot carry, set from the first
    write on (a tuning job's trials get ``TuningJobArn`` this way).
    """
    spec = TrainingJobSpec.from_request(request, config, entry_point_required=False)
    environment = resolve_image(spec.image_uri, config)
    check_runs_without_entry_point(spec, environment)
    algorithm = builtin_algorithm(environment) if spec.runs_builtin_algorithm else None
    own_train = list(environment.train) if spec.runs_builtin_algorithm and algorithm is None else []
    environment.check()
    store = store_for(config)
    _check_bucket(store, spec.output_path, "output_path")
    if spec.checkpoint_s3_uri:
        _check_bucket(store, spec.checkpoint_s3_uri, "checkpoint_s3_uri")
    n = spec.instance_count
    plans = [plan_channel(c, store, n) for c in spec.channels]
    hosts = host_names(n)
    args = to_cmd_args(user_hyperparameters(spec.hyperparameters))
    code: CodeBundle | None = None
    if spec.program:
        listing = _read_code_listing(store, spec.submit_directory)
        if spec.program not in listing and "setup.py" not in listing:
            raise SpecError(f"entry point {spec.program!r} is not in the code bundle {spec.submit_directory} "
                            f"(it holds {sorted(listing)[:10]}); check entry_point and source_dir.")
        command = entry_command(spec.program, listing, args, python="python")
        argv = command.argv
        code = CodeBundle(spec.submit_directory, CODE_DIR, str(config.home / "deps"), environment.python,
                          install_package=command.install_package)
    elif algorithm is not None:
        argv = algorithm.argv()
    elif own_train:
        argv = own_train
    else:
        argv = [*spec.entrypoint, *spec.arguments]
    definitions = [(m.name, m.regex) for m in spec.metric_definitions]
    if algorithm is not None and not definitions:
        definitions = list(algorithm.metric_definitions)  # the service supplies a built-in algorithm's own
    metrics = MetricWatcher(definitions)
    sandbox = detect_sandbox(config.sandbox)
    if request.get("EnableNetworkIsolation") and not sandbox.isolates:
        log.warning("EnableNetworkIsolation is set but there is no sandbox to enforce it: job %s runs with the "
                    "network. Install bubblewrap to isolate it.", spec.name)
    root = job_dir(config.jobs_root, spec.name)
    record = describe_training_job(spec, str(JobStatus.IN_PROGRESS), **(record_extras or {}))
    if algorithm is not None and not spec.metric_definitions:
        record["AlgorithmSpecification"] = {**record["AlgorithmSpecification"],
                                            "MetricDefinitions": algorithm.metric_definitions_request()}
    base_env = base_environment(config.home, environment)
    base_env.update(spec.env_vars)
    num_cpus = num_cpus_for(spec.instance_type)
    hps_json = dict(spec.hyperparameters)
    tasks = []
    for i, host in enumerate(hosts):
        resource_config = {"current_host": host, "current_instance_type": spec.instance_type.name,
                           "current_group_name": "homogeneousCluster", "hosts": hosts,
                           "instance_groups": [{"instance_group_name": "homogeneousCluster",
                                                "instance_type": spec.instance_type.name, "hosts": hosts}],
                           "network_interface_name": "eth0"}
        env = {**base_env, **training_env_vars(spec, host, hosts, resource_config, num_cpus)}
        tasks.append(InstanceTask(
            job_name=spec.name,
            layout=InstanceLayout(host, i, root / host),
            store=store,
            channels=[p.for_instance(i) for p in plans],
            outputs=[],
            argv=argv,
            env=env,
            config_files={
                "/opt/ml/input/config/hyperparameters.json": hps_json,
                "/opt/ml/input/config/inputdataconfig.json": input_data_config(spec.channels),
                "/opt/ml/input/config/resourceconfig.json": resource_config,
            },
            sandbox=sandbox,
            stop_signal=signal.SIGTERM,
            dirs=TRAINING_DIRS,
            isolate_network=bool(request.get("EnableNetworkIsolation")),
            code=code,
            workdir=CODE_DIR if code is not None else "/opt/ml",  # the training toolkit starts scripts in /opt/ml/code
            checkpoint=CheckpointSync(spec.checkpoint_s3_uri, spec.checkpoint_local_path)
            if spec.checkpoint_s3_uri else None,
        ))
    runtime = get_backend(backend)
    runtime.validate(tasks)

    metadata = open_metadata(config.database_url)
    create_job_within_quota(metadata, KIND, request, record, config)
    metrics._record = lambda points: metadata.add_metrics(KIND, spec.name, points)
    display = None
    events = InstanceEvents()
    if show_progress or show_logs:
        total_objects = sum(len(p.for_instance(i).objects) for p in plans for i in range(n))
        total_bytes = sum(p.bytes_for(i) for p in plans for i in range(n))
        display = ConsoleFeedback(spec.name, hosts, total_objects, total_bytes, show_logs=show_logs)
        display.__enter__()
        events = display.events()
    on_line = events.on_line

    def line(host: str, text: str) -> None:
        metrics.feed(host, text)
        on_line(host, text)

    events = InstanceEvents(on_staged=events.on_staged, on_line=line, on_state=events.on_state)

    def finalize() -> dict[str, Any]:
        out = S3Uri.parse(spec.output_prefix)
        model = _pack([t.layout.root / "model" for t in tasks], spec.compress_output)
        key = f"{out.key}/model.tar.gz" if spec.compress_output else f"{out.key}/model.tar"
        store.put(out.bucket, key, model)
        extra: dict[str, Any] = {"ModelArtifacts": {"S3ModelArtifacts": f"s3://{out.bucket}/{key}"}}
        data_dirs = [t.layout.root / "output" / "data" for t in tasks]
        if any(d.is_dir() and any(d.iterdir()) for d in data_dirs):
            store.put(out.bucket, f"{out.key}/output.tar.gz", _pack(data_dirs, True))
        return extra

    def final_extras(status: JobStatus, ending: dict[str, Any]) -> dict[str, Any]:
        extra: dict[str, Any] = {"FinalMetricDataList": metrics.final_metric_data_list()}
        record_now = driver.record
        reason = ending.get("FailureReason", "")
        if algorithm is not None:
            reason = _algorithm_reason(reason)
            if reason:
                extra["FailureReason"] = reason
        timed_out = reason.startswith("MaxRuntimeExceeded")
        extra["SecondaryStatus"] = "MaxRuntimeExceeded" if timed_out else _SECONDARY.get(status, "Training")
        start = record_now.get("TrainingStartTime")
        if start:
            extra["TrainingTimeInSeconds"] = int(time.time() - start)
            extra["BillableTimeInSeconds"] = extra["TrainingTimeInSeconds"] * n
        return extra

    driver = JobDriver(
        kind=KIND, name=spec.name, status_key="TrainingJobStatus",
        times=JobTimes("TrainingStartTime", "TrainingEndTime"), tasks=tasks, backend=runtime,
        metadata=metadata, record=record, max_runtime_seconds=spec.max_runtime_seconds, events=events,
        finalize=finalize, final_extras=final_extras,
    )
    record["SecondaryStatus"] = "Training"
    driver.start()
    return RunningJob(spec.name, driver, display)
