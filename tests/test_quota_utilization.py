"""Instance quotas count what is running, as the service's account-level limits do: the instances of a type
held by unfinished jobs of a kind, plus the new job's, must fit the quota. Every test runs with
``[quotas] "ml.m5.large" = 1``, so one running job uses the whole quota."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import sluice
from sluice.config import reset_config
from sluice.errors import ResourceLimitExceeded
from sluice.estimator import Estimator
from sluice.jobs.instance_types import check_quota
from sluice.jobs.status import JobStatus
from sluice.processing import Processor
from sluice.serving.endpoints import delete_endpoint, deploy_endpoint
from sluice.tuner import CategoricalParameter, HyperparameterTuner
from tests.waiting import wait_until

TYPE = "ml.m5.large"
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"




def status(sess: sluice.Session, kind: str, name: str) -> str:
    row = sess.metadata.get_job(kind, name)
    assert row is not None, f"{kind} {name} was never recorded"
    return row.status


def stop_and_wait(sess: sluice.Session, kind: str, name: str) -> None:
    """Stop a job as ``ProcessingJob.stop()`` / ``sluice jobs stop`` do (a stop request in the metadata store),
    and wait until its driver has ended it."""
    stop = {"ProcessingJob": sess.stop_processing_job, "TrainingJob": sess.stop_training_job}[kind]
    if not JobStatus(status(sess, kind, name)).is_terminal:
        stop(name)
    wait_until(lambda: JobStatus(status(sess, kind, name)).is_terminal, f"{kind} {name} to end")


@pytest.fixture
def sess(sluice_home: Path) -> Iterator[sluice.Session]:
    """A session whose config allows one ml.m5.large; at the end, every job this process still runs is stopped."""
    (sluice_home / "config.toml").write_text(f'[quotas]\n"{TYPE}" = 1\n')
    reset_config()
    session = sluice.Session()
    session.metadata.list_jobs()  # open the store once, before any test starts jobs from several threads
    yield session
    for kind in ("ProcessingJob", "TrainingJob"):
        for row in session.metadata.jobs_in_status(kind, ["InProgress", "Stopping"]):
            if row.driver_pid == os.getpid():
                stop_and_wait(session, kind, row.name)


def sleeper(sess: sluice.Session) -> Processor:
    """A processing job on one ml.m5.large that holds its instance until stopped."""
    return Processor(role=sluice.get_execution_role(), image_uri=None, instance_count=1, instance_type=TYPE,
                     entrypoint=["python3", "-c", "import time; time.sleep(3600)"], sagemaker_session=sess)


def quick(sess: sluice.Session) -> Processor:
    return Processor(role=sluice.get_execution_role(), image_uri=None, instance_count=1, instance_type=TYPE,
                     entrypoint=["python3", "-c", "print('done')"], sagemaker_session=sess)


def test_a_running_job_holds_its_instance_until_it_is_stopped(sess):
    holder = sleeper(sess)
    holder.run(job_name="holder", wait=False, logs=False)
    assert status(sess, "ProcessingJob", "holder") == "InProgress"

    with pytest.raises(ResourceLimitExceeded) as refused:
        quick(sess).run(job_name="second", wait=False, logs=False)
    msg = str(refused.value)
    assert msg.startswith(
        f"ResourceLimitExceeded: The account-level service limit '{TYPE} for processing job usage' is 1 Instances, "
        "with current utilization of 1 Instances and a request delta of 1 Instances.")
    assert f'[quotas] "{TYPE}" = 2 in {sess.config.home / "config.toml"}' in msg
    assert "'holder'" in msg  # which job to wait for
    assert sess.metadata.get_job("ProcessingJob", "second") is None  # refused before it was recorded
    # The limit is per kind of job, as the service's are: training and transform usage are untouched.
    assert check_quota(TYPE, 1, sess.config, job_kind="training").name == TYPE
    assert check_quota(TYPE, 1, sess.config, job_kind="transform").name == TYPE

    holder.jobs[-1].stop()
    wait_until(lambda: status(sess, "ProcessingJob", "holder") == "Stopped", "the holder to be stopped")
    quick(sess).run(job_name="third", wait=True, logs=False)
    assert status(sess, "ProcessingJob", "third") == "Completed"


def test_a_job_whose_driver_died_holds_nothing(sess, tmp_path):
    marker = tmp_path / "running"
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(f"""
        import sluice
        from sluice.processing import Processor
        Processor(role=sluice.get_execution_role(), image_uri=None, instance_count=1, instance_type={TYPE!r},
                  entrypoint=["python3", "-c", "open({str(marker)!r}, 'w').close(); import time; time.sleep(3600)"]
                  ).run(job_name="orphan", wait=False, logs=False)
        import time; time.sleep(3600)
    """))
    child = subprocess.Popen([sys.executable, str(driver)], env=os.environ.copy())

    def started() -> bool:
        assert child.poll() is None, "the driver process exited before the job started"
        return marker.exists()

    try:
        wait_until(started, "the orphan's script to start")
        with pytest.raises(ResourceLimitExceeded, match="current utilization of 1 Instances"):
            quick(sess).run(job_name="blocked", wait=False, logs=False)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # Nobody has looked at the orphan since: its row still says InProgress, but a dead driver holds nothing.
    assert status(sess, "ProcessingJob", "orphan") == "InProgress"
    quick(sess).run(job_name="after", wait=True, logs=False)
    assert status(sess, "ProcessingJob", "after") == "Completed"


def test_two_jobs_racing_for_the_last_instance_exactly_one_starts(sess):
    barrier = threading.Barrier(2)
    outcome: dict[str, Exception | None] = {}

    def start(name: str) -> None:
        proc = sleeper(sess)
        barrier.wait()
        try:
            proc.run(job_name=name, wait=False, logs=False)
            outcome[name] = None
        except Exception as exc:  # recorded for the assertions below
            outcome[name] = exc

    threads = [threading.Thread(target=start, args=(name,)) for name in ("racer-a", "racer-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    started = [name for name, exc in outcome.items() if exc is None]
    refused = {name: exc for name, exc in outcome.items() if exc is not None}
    assert len(started) == 1, f"exactly one job may start, got {outcome}"
    [(loser, exc)] = refused.items()
    assert isinstance(exc, ResourceLimitExceeded)
    assert "current utilization of 1 Instances" in str(exc) and repr(started[0]) in str(exc)
    assert sess.metadata.get_job("ProcessingJob", loser) is None
    assert status(sess, "ProcessingJob", started[0]) == "InProgress"


TRIAL = """
import argparse, time
p = argparse.ArgumentParser()
p.add_argument("-x", type=float, default=0.0)
p.add_argument("--hold", type=int, default=0)
a, _ = p.parse_known_args()
time.sleep(3600 if a.hold else 0)
print(f"score={a.x}")
"""


def test_a_tuning_job_waits_for_its_own_trials_and_is_refused_while_another_job_holds_the_instances(
        sess, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(TRIAL)

    def estimator(**hyperparameters: int) -> Estimator:
        return Estimator(image_uri=SKLEARN_IMAGE, entry_point="train.py", source_dir=str(src),
                         role=sluice.get_execution_role(), instance_count=1, instance_type=TYPE,
                         output_path=f"s3://{sess.default_bucket()}/models", hyperparameters=hyperparameters,
                         metric_definitions=[{"Name": "score", "Regex": r"score=([0-9.]+)"}], sagemaker_session=sess)

    holder = estimator(hold=1)
    holder.fit(wait=False, logs=False, job_name="holder")
    tuner = HyperparameterTuner(estimator(), "score", {"x": CategoricalParameter([1, 2])}, strategy="Grid",
                                max_jobs=2, max_parallel_jobs=2)
    with pytest.raises(ResourceLimitExceeded, match=rf"'{TYPE} for training job usage' is 1 Instances, with "
                                                    r"current utilization of 1 Instances"):
        tuner.fit(job_name="tuned")
    stop_and_wait(sess, "TrainingJob", "holder")

    # Two trials may run at once, but the quota allows one instance: the second waits for the first.
    tuner.fit(job_name="tuned")
    assert tuner.describe()["HyperParameterTuningJobStatus"] == "Completed"
    first, second = sorted(sess.metadata.list_jobs("TrainingJob", name_contains="tuned-"), key=lambda r: r.name)
    assert first.status == second.status == "Completed"
    assert second.record["CreationTime"] >= first.record["TrainingEndTime"]


ECHO_INFERENCE = """
def model_fn(model_dir):
    return None

def transform_fn(model, input_data, content_type, accept):
    return input_data, accept
"""


def test_an_endpoint_in_service_holds_its_instances_until_deleted(sess):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("code/inference.py")
        info.size = len(ECHO_INFERENCE.encode())
        tar.addfile(info, io.BytesIO(ECHO_INFERENCE.encode()))
    uri = sess.upload_string_as_file_body(buf.getvalue(), sess.default_bucket(), "models/echo/model.tar.gz")
    sess.metadata.create_resource("Model", "echo", {
        "ModelName": "echo", "PrimaryContainer": {"Image": "local", "ModelDataUrl": uri, "Environment": {
            "SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}},
        "ExecutionRoleArn": sluice.get_execution_role(), "CreationTime": time.time()})

    deploy_endpoint("echo", "first", 1, TYPE, sess.config)
    try:
        with pytest.raises(ResourceLimitExceeded) as refused:
            deploy_endpoint("echo", "second", 1, TYPE, sess.config)
        assert f"'{TYPE} for endpoint job usage' is 1 Instances, with current utilization of 1 Instances" \
            in str(refused.value)
        assert "delete an endpoint that uses them ('first')" in str(refused.value)
        # Endpoints and jobs are separate limits, as on the service.
        quick(sess).run(job_name="beside", wait=True, logs=False)
    finally:
        delete_endpoint("first", sess.config)
    deploy_endpoint("echo", "second", 1, TYPE, sess.config)
    delete_endpoint("second", sess.config)
