"""Start a processing job: every check first, then the record, then the instances.

Order matters for "bad input is refused before any work starts": the request is validated, the image
resolved to an environment, every channel resolved and sharded (a missing prefix or a bad manifest
stops here) and the backend's own checks run — all before the job is recorded or a file is written.
The instance quota is checked early (in validation) and again as the job is recorded, under the quota
lock, counting the jobs that hold instances at that moment.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

from sluice.channels.plan import plan_channel
from sluice.config import Config
from sluice.jobs.instance_types import create_job_within_quota
from sluice.jobs.layout import PROCESSING_DIRS, InstanceLayout, host_names, job_dir, processing_job_config
from sluice.jobs.processing import KIND, ProcessingJobSpec, describe_processing_job
from sluice.jobs.status import JobStatus
from sluice.metadata import open_metadata
from sluice.runtime.backend import get_backend
from sluice.runtime.driver import JobDriver, JobTimes
from sluice.runtime.environments import resolve_image
from sluice.runtime.feedback import ConsoleFeedback
from sluice.runtime.instance import InstanceEvents, InstanceTask, base_environment
from sluice.runtime.sandbox import detect_sandbox
from sluice.storage import store_for

__all__ = ["RunningJob", "start_processing_job"]


@dataclass
class RunningJob:
    """A started job: its driver, and the live display to close when it ends (if any)."""

    name: str
    driver: JobDriver
    display: Any = None

    def wait(self, timeout: float | None = None) -> bool:
        done = self.driver.join(timeout)
        if done and self.display is not None:
            self.display.__exit__(None, None, None)
            self.display = None
        return done


def start_processing_job(
    request: dict[str, Any], config: Config, *, show_progress: bool = False, show_logs: bool = False,
    backend: str = "local",
) -> RunningJob:
    """Validate ``request`` (a ``CreateProcessingJob`` dict), record the job and start its instances."""
    spec = ProcessingJobSpec.from_request(request, config)
    environment = resolve_image(spec.image_uri, config)
    environment.check()
    store = store_for(config)
    n = spec.instance_count
    plans = [plan_channel(c, store, n) for c in spec.inputs]
    sandbox = detect_sandbox(config.sandbox)
    hosts = host_names(n)
    root = job_dir(config.jobs_root, spec.name)
    record = describe_processing_job(spec, str(JobStatus.IN_PROGRESS))
    job_config = processing_job_config(record)
    base_env = base_environment(config.home, environment)
    base_env.update(spec.env_vars)
    argv = list(spec.entrypoint) + list(spec.arguments)
    tasks = [
        InstanceTask(
            job_name=spec.name,
            layout=InstanceLayout(host, i, root / host),
            store=store,
            channels=[p.for_instance(i) for p in plans],
            outputs=list(spec.outputs),
            argv=argv,
            env=base_env,
            config_files={
                "/opt/ml/config/processingjobconfig.json": job_config,
                "/opt/ml/config/resourceconfig.json": {"current_host": host, "hosts": hosts},
            },
            sandbox=sandbox,
            stop_signal=signal.SIGINT,
            dirs=PROCESSING_DIRS,
        )
        for i, host in enumerate(hosts)
    ]
    runtime = get_backend(backend)
    runtime.validate(tasks)

    metadata = open_metadata(config.database_url)
    create_job_within_quota(metadata, KIND, request, record, config)  # refuses if the quota is used up
    display = None
    events = InstanceEvents()
    if show_progress or show_logs:
        total_objects = sum(len(s) for p in plans for s in p.shards)
        total_bytes = sum(p.bytes_for(i) for p in plans for i in range(n))
        display = ConsoleFeedback(spec.name, hosts, total_objects, total_bytes, show_logs=show_logs)
        display.__enter__()
        events = display.events()
    driver = JobDriver(
        kind=KIND, name=spec.name, status_key="ProcessingJobStatus",
        times=JobTimes("ProcessingStartTime", "ProcessingEndTime"), tasks=tasks, backend=runtime,
        metadata=metadata, record=record, max_runtime_seconds=spec.max_runtime_seconds, events=events,
    )
    driver.start()
    return RunningJob(spec.name, driver, display)
