"""Pipeline executions as recorded in the metadata store, readable from any process.

An execution is a ``jobs`` row of kind ``PipelineExecution`` named by its execution id: its request holds
what was started (pipeline name, definition text, parameters, parallelism, selection) and its record is
the ``DescribePipelineExecution`` shape. Each step is a ``pipeline_steps`` row. The process that drives the
execution (:mod:`sluice.workflow.executor`) writes them; :class:`PipelineExecution` reads them, so
``describe``, ``list_steps``, ``wait``, ``stop`` and ``result`` work the same from the starting process,
another Python process or the ``sluice pipeline`` command.

An execution whose driver process has died is marked ``Failed`` (and its unfinished steps with it) the
first time anyone reads it, rather than being left ``Executing`` forever.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from sluice.config import ACCOUNT_ID, Config
from sluice.errors import PipelineError

__all__ = [
    "EXECUTION_KIND",
    "TERMINAL",
    "LocalPipelineExecution",
    "PipelineExecution",
    "execution_arn",
    "list_executions",
    "list_pipelines",
    "open_execution",
    "parse_execution_arn",
    "pipeline_arn",
]

EXECUTION_KIND = "PipelineExecution"
TERMINAL = ("Succeeded", "Failed", "Stopped")
_STEP_TERMINAL = ("Succeeded", "Failed", "Stopped")
_INTERNAL_STEP_KEYS = ("Properties", "CacheKey", "Attempts")
_PIPELINE_KIND = "Pipeline"


def pipeline_arn(name: str, region: str) -> str:
    """The ARN a pipeline of this name has (lower-cased, as the service spells it)."""
    return f"arn:aws:sagemaker:{region}:{ACCOUNT_ID}:pipeline/{name.lower()}"


def execution_arn(pipeline: str, region: str, execution_id: str) -> str:
    return f"{pipeline_arn(pipeline, region)}/execution/{execution_id}"


def parse_execution_arn(text: str) -> str:
    """The execution id in an execution ARN, or ``text`` itself when it is already an id."""
    return text.rsplit("/execution/", 1)[-1] if "/execution/" in text else text


def _time(value: Any) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(float(value), dt.UTC) if isinstance(value, int | float) else None


def _metadata(config: Config) -> Any:
    from sluice.metadata import open_metadata

    return open_metadata(config.database_url)


class PipelineExecution:
    """One execution, shaped like the SDK's ``_PipelineExecution`` (``arn``, ``describe``, ``list_steps``,
    ``wait``, ``stop``, ``result``), reading the metadata store on every call."""

    def __init__(self, config: Config, execution_id: str, *, session: Any = None,
                 local_thread: threading.Thread | None = None) -> None:
        self.config = config
        self.execution_id = execution_id
        self._session = session
        self._thread = local_thread
        row = self._row()
        self.arn: str = row.record["PipelineExecutionArn"]
        self.pipeline_name: str = row.request["PipelineName"]

    def __repr__(self) -> str:
        return f"PipelineExecution(arn={self.arn!r})"

    # ---- reading ------------------------------------------------------------------------------------
    def _row(self) -> Any:
        row = _metadata(self.config).get_job(EXECUTION_KIND, self.execution_id)
        if row is None:
            raise PipelineError(f"ResourceNotFound: no pipeline execution {self.execution_id!r}; "
                                "`sluice pipeline executions` lists them.")
        if row.status in ("Executing", "Stopping") and not _driver_alive(row):
            _mark_abandoned(self.config, row)
            row = _metadata(self.config).get_job(EXECUTION_KIND, self.execution_id)
        return row

    def describe(self) -> dict[str, Any]:
        """``DescribePipelineExecution``."""
        return _describe(self._row())

    def list_steps(self) -> list[dict[str, Any]]:
        """``ListPipelineExecutionSteps``: the steps that started, most recently started first."""
        return self.step_list()

    def step_list(self) -> list[dict[str, Any]]:
        """The ``ListPipelineExecutionSteps`` entries as a list, whatever shape ``list_steps`` has here."""
        self._row()
        rows = _metadata(self.config).list_steps(self.execution_id)
        return [public_step(r.record) for r in sorted(rows, key=lambda r: r.started_at, reverse=True)]

    def step_records(self) -> dict[str, dict[str, Any]]:
        """Every step's full stored record (with its Properties, cache key and attempts), by step name."""
        return {r.step: r.record for r in _metadata(self.config).list_steps(self.execution_id)}

    @property
    def request(self) -> dict[str, Any]:
        """What was started: PipelineName, PipelineDefinition (text), PipelineParameters, ..."""
        return dict(self._row().request)

    def list_parameters(self) -> list[dict[str, str]]:
        """``ListPipelineParametersForExecution``."""
        return list(self._row().request.get("PipelineParameters", []))

    # ---- acting ---------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the driver to stop: no new step starts, running jobs are stopped, the execution ends Stopped."""
        row = self._row()
        if row.status in TERMINAL:
            raise PipelineError(f"pipeline execution {self.arn} already ended {row.status}; nothing to stop.")
        meta = _metadata(self.config)
        meta.request_stop(EXECUTION_KIND, self.execution_id)
        record = dict(row.record, PipelineExecutionStatus="Stopping")
        meta.update_job(EXECUTION_KIND, self.execution_id, record=record, status="Stopping",
                        allowed_from=["Executing"])

    def wait(self, delay: float = 30, max_attempts: int = 60, timeout: float | None = None,
             show: bool | None = None) -> None:
        """Block until the execution ends; like the SDK waiter, raise if it did not succeed.

        With ``show`` (default: when standard output is a terminal) a live table of step states is drawn
        while waiting. In the starting process this joins the driver thread; elsewhere it polls the store.
        """
        from sluice.workflow.display import watch_execution

        watch_execution(self, show=show, timeout=timeout)
        row = self._row()
        if row.status not in TERMINAL:
            raise PipelineError(f"pipeline execution {self.arn} is still {row.status} after {timeout}s; wait again, "
                                "or stop it with execution.stop() / `sluice pipeline stop`.")
        if row.status != "Succeeded":
            raise PipelineError(f"Waiter PipelineExecutionComplete failed: pipeline execution {self.arn} ended "
                                f"{row.status}: {row.record.get('FailureReason', '')}")

    def join(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds for the end; whether it ended. Joins the driver thread when local."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return False
            if self._row().status in TERMINAL:
                return True
            # A KeyboardInterrupt during Thread.join can leave the thread marked finished while it still runs
            # (CPython 3.11): trust the record, and poll it instead.
            self._thread = None
        event = threading.Event()
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._row().status not in TERMINAL:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            event.wait(0.25 if remaining is None else min(0.25, remaining))
        return True

    def explain(self, step_name: str) -> Any:
        """Why ``step_name`` was or was not a cache hit in this execution (a :class:`CacheExplanation`)."""
        from sluice.workflow.cache import explain_step
        from sluice.workflow.graph import parse_definition

        graph = parse_definition(self.request["PipelineDefinition"]).graph
        if step_name not in graph:
            raise PipelineError(f"pipeline {self.pipeline_name!r} has no step {step_name!r}; its steps are "
                                f"{', '.join(sorted(graph))}.")
        record = self.step_records().get(step_name)
        if record is None:
            raise PipelineError(f"step {step_name!r} did not run in execution {self.arn} (skipped, or the execution "
                                "ended before it); there is nothing to explain.")
        return explain_step(_metadata(self.config), self.pipeline_name, graph[step_name], record, self.arn)

    def result(self, step_name: str) -> Any:
        """The return value of a ``@step`` function step of this execution."""
        from sluice.workflow.runners.function import load_function_result

        return load_function_result(self, step_name)


class LocalPipelineExecution(PipelineExecution):
    """What ``pipeline.start()`` returns under a ``LocalPipelineSession``: the execution has already ended (SDK
    local mode runs it inside ``start()``), and ``list_steps()`` has local mode's shape,
    ``{"PipelineExecutionSteps": [...]}``. Everything else is :class:`PipelineExecution`'s."""

    def list_steps(self) -> dict[str, list[dict[str, Any]]]:  # type: ignore[override]
        return {"PipelineExecutionSteps": self.step_list()}


def public_step(record: Mapping[str, Any]) -> dict[str, Any]:
    """A stored step record as ``ListPipelineExecutionSteps`` shows it (times as datetimes, internals out)."""
    out = {k: v for k, v in record.items() if k not in _INTERNAL_STEP_KEYS}
    for key in ("StartTime", "EndTime"):
        if key in out:
            out[key] = _time(out[key])
    return out


def _describe(row: Any) -> dict[str, Any]:
    out = dict(row.record)
    for key in ("CreationTime", "LastModifiedTime"):
        if key in out:
            out[key] = _time(out[key])
    return out


def _driver_alive(row: Any) -> bool:
    if row.driver_pid == os.getpid() and row.driver_host == socket.gethostname():
        return True
    return bool(row.driver_is_alive())


def _mark_abandoned(config: Config, row: Any) -> None:
    """The driver died: end the execution Failed, and every step it left unfinished with it."""
    meta = _metadata(config)
    reason = (f"InternalError: the process driving this execution (pid {row.driver_pid} on {row.driver_host}) "
              "ended before the execution did; its unfinished steps were abandoned. Start the pipeline again, "
              "or re-run the unfinished steps with SelectiveExecutionConfig.")
    now = time.time()
    for step in meta.list_steps(row.name):
        if step.status not in _STEP_TERMINAL:
            record = dict(step.record, StepStatus="Failed", EndTime=now,
                          FailureReason="the process driving the execution ended while this step ran")
            meta.put_step(row.name, step.step, "Failed", record)
    record = dict(row.record, PipelineExecutionStatus="Failed", FailureReason=reason, LastModifiedTime=now)
    meta.update_job(EXECUTION_KIND, row.name, record=record, status="Failed", allowed_from=["Executing", "Stopping"])


def open_execution(config: Config, arn_or_id: str, session: Any = None) -> PipelineExecution:
    """The execution with this ARN or id (refused clearly when there is none)."""
    return PipelineExecution(config, parse_execution_arn(arn_or_id), session=session)


def list_executions(config: Config, pipeline_name: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """``ListPipelineExecutions`` summaries, newest first (all pipelines when ``pipeline_name`` is None)."""
    rows = _metadata(config).list_jobs(kind=EXECUTION_KIND, limit=10_000 if pipeline_name else limit)
    out = []
    for row in rows:
        if pipeline_name is not None and row.request.get("PipelineName") != pipeline_name:
            continue
        if row.status in ("Executing", "Stopping") and not _driver_alive(row):
            _mark_abandoned(config, row)
            row = _metadata(config).get_job(EXECUTION_KIND, row.name)
        record = row.record
        summary = {"PipelineExecutionArn": record["PipelineExecutionArn"],
                   "PipelineName": row.request.get("PipelineName"),  # not in the service's shape: for listings
                   "StartTime": _time(record.get("CreationTime")),
                   "PipelineExecutionStatus": record.get("PipelineExecutionStatus"),
                   "PipelineExecutionDisplayName": record.get("PipelineExecutionDisplayName"),
                   "PipelineExecutionFailureReason": record.get("FailureReason")}
        out.append({k: v for k, v in summary.items() if v is not None})  # as boto leaves absent fields out
        if len(out) >= limit:
            break
    return out


def list_pipelines(config: Config) -> list[dict[str, Any]]:
    """``ListPipelines`` summaries, with each pipeline's latest execution status."""
    meta = _metadata(config)
    out = []
    for row in meta.list_resources(_PIPELINE_KIND):
        latest = list_executions(config, row.name, limit=1)
        out.append({"PipelineName": row.name, "PipelineArn": row.record.get("PipelineArn"),
                    "PipelineDescription": row.record.get("PipelineDescription"),
                    "CreationTime": _time(row.created_at), "LastModifiedTime": _time(row.updated_at),
                    "LatestExecutionStatus": latest[0]["PipelineExecutionStatus"] if latest else None,
                    "LatestExecutionArn": latest[0]["PipelineExecutionArn"] if latest else None})
    return out
