"""A transform instance that fails does not stop its siblings: they finish their own objects, and the job's
reason names every failed instance. Driven through the real JobDriver with a fake backend that implements
the backend seam."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sluice.jobs.status import JobStatus
from sluice.metadata import open_metadata
from sluice.runtime.backend import Backend, InstanceHandle
from sluice.runtime.driver import JobDriver, JobTimes
from sluice.runtime.instance import InstanceEvents, InstanceResult, InstanceTask
from sluice.serving.transform import _FinishAll


class FakeHandle(InstanceHandle):
    def __init__(self, host: str, result: InstanceResult, release: threading.Event, log: list[str]) -> None:
        self.host, self._result, self._release, self.log = host, result, release, log

    def wait(self, timeout: float | None = None) -> InstanceResult | None:
        return self._result if self._release.wait(timeout) else None

    def stop(self) -> None:
        self.log.append(f"stop {self.host}")
        self._release.set()

    def upload_outputs(self, success: bool) -> list[str]:
        self.log.append(f"upload {self.host} success={success}")
        return []


class FakeBackend(Backend):
    """algo-1 ends at once with ``first``; algo-2 ends with ``second`` when ``release`` is set."""

    def __init__(self, first: InstanceResult, second: InstanceResult, release: threading.Event) -> None:
        self.results = {"algo-1": (first, threading.Event()), "algo-2": (second, release)}
        self.results["algo-1"][1].set()
        self.log: list[str] = []

    def start(self, task: InstanceTask, events: InstanceEvents) -> InstanceHandle:
        result, release = self.results[task.host]
        return FakeHandle(task.host, result, release, self.log)


class Task:
    def __init__(self, host: str) -> None:
        self.host = host


def drive(sluice_home: Path, backend: Backend, name: str) -> JobDriver:
    metadata = open_metadata(f"sqlite:///{sluice_home / 'test.db'}")
    metadata.create_job("TransformJob", name, "InProgress", {}, {"TransformJobStatus": "InProgress"})
    runtime = _FinishAll(backend)

    def final_extras(status: JobStatus, ending: dict) -> dict:
        reason = runtime.failure_reason() if status is JobStatus.FAILED else None
        return {"FailureReason": reason} if reason else {}

    return JobDriver(kind="TransformJob", name=name, status_key="TransformJobStatus",
                     times=JobTimes("TransformStartTime", "TransformEndTime"),
                     tasks=[Task("algo-1"), Task("algo-2")],  # type: ignore[list-item]
                     backend=runtime, metadata=metadata, record={}, max_runtime_seconds=60,
                     events=InstanceEvents(), final_extras=final_extras, poll_seconds=0.05)


def test_a_failed_instance_lets_its_sibling_finish_and_upload(sluice_home):
    release = threading.Event()
    backend = FakeBackend(InstanceResult("algo-1", 1, message="bad.csv: HTTP 500"),
                          InstanceResult("algo-2", 0), release)
    driver = drive(sluice_home, backend, "job-a").start()
    assert not driver.join(0.3)  # algo-1 has failed, but the job waits for algo-2 rather than stopping it
    release.set()
    assert driver.join(10)
    assert "stop algo-2" not in backend.log
    assert sorted(backend.log) == ["upload algo-1 success=False", "upload algo-2 success=False"]
    assert driver.record["TransformJobStatus"] == "Failed"
    assert driver.record["FailureReason"] == "AlgorithmError: bad.csv: HTTP 500"


def test_every_failed_instance_is_named_in_the_reason(sluice_home):
    release = threading.Event()
    release.set()
    backend = FakeBackend(InstanceResult("algo-1", 1, message="a.csv: HTTP 500"),
                          InstanceResult("algo-2", 1, message="b.csv: HTTP 400"), release)
    driver = drive(sluice_home, backend, "job-b").start()
    assert driver.join(10)
    assert driver.record["FailureReason"] == "AlgorithmError: algo-1: a.csv: HTTP 500; algo-2: b.csv: HTTP 400"


@pytest.mark.parametrize("second_code", [0, 1])
def test_a_stop_request_still_stops_every_instance(sluice_home, second_code):
    release = threading.Event()
    backend = FakeBackend(InstanceResult("algo-1", 1, message="a.csv: HTTP 500"),
                          InstanceResult("algo-2", second_code), release)
    driver = drive(sluice_home, backend, f"job-c{second_code}")
    driver.metadata.request_stop("TransformJob", driver.name)
    driver.start()
    assert driver.join(10)
    assert "stop algo-2" in backend.log
    assert driver.record["TransformJobStatus"] == "Stopped"
