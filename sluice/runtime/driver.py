"""Drive one job from start to a terminal status, on any backend.

The driver starts every instance, then waits for them while watching two things: the deadline
(``MaxRuntimeInSeconds``) and a stop request recorded by any process (``sluice jobs stop``). Outcome,
following the service:

- every instance exits 0 → outputs are uploaded → ``Completed``;
- any instance exits non-zero → the others are stopped, nothing EndOfJob is uploaded → ``Failed``, with
  ``FailureReason`` from ``/opt/ml/output/message`` (or ``failure``), else the exit code and last log lines;
- a stop request → ``Stopped``; the deadline → ``Stopped`` with a reason that names the limit.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sluice.jobs.status import JobStatus, allowed_from
from sluice.metadata.store import MetadataStore
from sluice.runtime.backend import Backend, InstanceHandle
from sluice.runtime.instance import InstanceEvents, InstanceResult, InstanceTask

__all__ = ["JobDriver", "JobTimes"]

_MESSAGE_LIMIT = 1024


@dataclass(frozen=True)
class JobTimes:
    """Names of the Describe record's time fields for this job kind."""

    start: str
    end: str


class JobDriver:
    """Runs ``tasks`` on ``backend`` and keeps the job's record in ``metadata`` current."""

    def __init__(
        self,
        *,
        kind: str,
        name: str,
        status_key: str,
        times: JobTimes,
        tasks: list[InstanceTask],
        backend: Backend,
        metadata: MetadataStore,
        record: dict[str, Any],
        max_runtime_seconds: int,
        events: InstanceEvents,
        on_done: Callable[[dict[str, Any]], None] | None = None,
        finalize: Callable[[], dict[str, Any]] | None = None,
        final_extras: Callable[[JobStatus, dict[str, Any]], dict[str, Any]] | None = None,
        poll_seconds: float = 0.5,
    ) -> None:
        self.kind, self.name, self.status_key, self.times = kind, name, status_key, times
        self.tasks, self.backend, self.metadata = tasks, backend, metadata
        self.record = record
        self.max_runtime_seconds = max_runtime_seconds
        self.events = events
        self.on_done = on_done
        self.finalize = finalize  # job-level work after every instance succeeded (e.g. pack model.tar.gz)
        self.final_extras = final_extras  # record fields for any ending (e.g. FinalMetricDataList)
        self.poll_seconds = poll_seconds
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"job-{name}", daemon=False)

    def start(self) -> JobDriver:
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    # ---- the loop ----------------------------------------------------------------------------
    def _main(self) -> None:
        try:
            self._drive()
        except BaseException as exc:  # a bug in the driver itself: never leave the job InProgress
            self._conclude(JobStatus.FAILED, {"FailureReason": f"InternalServerError: sluice driver failed: {exc!r}"})
            raise
        finally:
            self.finished.set()

    def _drive(self) -> None:
        started = time.time()
        self._update(record={self.times.start: started})
        handles: list[InstanceHandle] = [self.backend.start(t, self.events) for t in self.tasks]
        deadline = time.monotonic() + self.max_runtime_seconds
        results: dict[str, InstanceResult] = {}
        stop_reason: str | None = None
        cause: InstanceResult | None = None  # the first instance to fail, before any was stopped
        next_stop_check = 0.0
        while len(results) < len(handles):
            now = time.monotonic()
            if now >= deadline:
                stop_reason = (
                    f"MaxRuntimeExceeded: the job ran longer than StoppingCondition.MaxRuntimeInSeconds="
                    f"{self.max_runtime_seconds} and was stopped; raise max_runtime_in_seconds if it needs longer."
                )
                break
            if now >= next_stop_check:
                next_stop_check = now + self.poll_seconds
                if self.metadata.stop_requested(self.kind, self.name):
                    stop_reason = "StoppedByUser: stop was requested."
                    break
            pending = [h for h in handles if h.host not in results]
            # Wait on the first pending instance; the timeout bounds how late a stop or deadline is seen.
            wait_for = min(self.poll_seconds, max(0.0, deadline - now))
            res = pending[0].wait(wait_for)
            for h in pending:
                r = res if h is pending[0] else h.wait(0)
                if r is not None:
                    results[h.host] = r
                    if not r.succeeded and cause is None:
                        cause = r
            if cause is not None:
                break
        if stop_reason or cause is not None:
            # Every instance gets its grace period at once, not one after another.
            stoppers = [threading.Thread(target=h.stop, name=f"stop-{h.host}")
                        for h in handles if h.host not in results]
            for t in stoppers:
                t.start()
            for t in stoppers:
                t.join()
            for h in handles:
                if h.host not in results:
                    results[h.host] = h.wait() or InstanceResult(h.host, None, error="did not report")
        ordered = [results[h.host] for h in handles]
        messages = [r.message for r in ordered if r.message]
        extra: dict[str, Any] = {}
        if messages:
            extra["ExitMessage"] = "\n".join(messages)[:_MESSAGE_LIMIT]
        if stop_reason:
            for h in handles:
                h.upload_outputs(False)
            if not stop_reason.startswith("StoppedByUser"):
                extra["FailureReason"] = stop_reason
            self._conclude(JobStatus.STOPPED, extra)
            return
        if cause is not None:
            for h in handles:
                h.upload_outputs(False)
            extra["FailureReason"] = _failure_reason(cause)
            self._conclude(JobStatus.FAILED, extra)
            return
        upload_errors = [e for h in handles for e in h.upload_outputs(True)]
        if not upload_errors and self.finalize is not None:
            try:
                extra.update(self.finalize())
            except Exception as exc:
                upload_errors.append(f"{exc}")
        if upload_errors:
            extra["FailureReason"] = "ClientError: " + "; ".join(upload_errors)[:_MESSAGE_LIMIT]
            self._conclude(JobStatus.FAILED, extra)
            return
        self._conclude(JobStatus.COMPLETED, extra)

    # ---- recording ---------------------------------------------------------------------------
    def _update(self, *, record: dict[str, Any], status: JobStatus | None = None) -> bool:
        self.record.update(record)
        self.record["LastModifiedTime"] = time.time()
        if status is not None:
            self.record[self.status_key] = str(status)
        return self.metadata.update_job(
            self.kind, self.name, record=self.record, status=str(status) if status else None,
            allowed_from=allowed_from(status) if status else None,
        )

    def _conclude(self, status: JobStatus, extra: dict[str, Any]) -> None:
        extra = dict(extra, **{self.times.end: time.time()})
        if self.final_extras is not None:
            extra.update(self.final_extras(status, extra))
        self._update(record=extra, status=status)
        if self.on_done is not None:
            self.on_done(self.record)


def _signal_note(code: int | None) -> str:
    """`` (killed by SIGKILL)`` for 137 or -9: a container runtime reports death by signal as 128+N."""
    if code is None:
        return ""
    number = -code if code < 0 else code - 128 if code > 128 else 0
    try:
        return f" (killed by {signal.Signals(number).name})" if number else ""
    except ValueError:
        return ""


def _failure_reason(first: InstanceResult) -> str:
    if first.error and first.exit_code is None:
        return f"ClientError: {first.host}: {first.error}"[:_MESSAGE_LIMIT]
    if first.message:
        return f"AlgorithmError: {first.message}"[:_MESSAGE_LIMIT]
    if first.error:
        return f"ClientError: {first.host}: {first.error}"[:_MESSAGE_LIMIT]
    head = f"AlgorithmError: {first.host} exited with code {first.exit_code}{_signal_note(first.exit_code)}. " \
           "Last log lines:\n"
    tail = "\n".join(first.log_tail[-10:])
    return head + tail[-(_MESSAGE_LIMIT - len(head)):]  # keep the newest lines when trimming
