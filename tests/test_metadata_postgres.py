"""The metadata store keeps one contract on SQLite and on PostgreSQL, and sluice runs with its record on PostgreSQL.

The contract tests run on both databases (a SQLite file, and a fresh database on the session's PostgreSQL
server): conditional status updates that exactly one of two racers wins, names that match without regard to
case, the 63-character job name limit, pipeline steps, cache entries and resources. The end-to-end tests set
``SLUICE_METADATA_URL`` as a user would, run a processing job and a small cached pipeline, read them from
another process, and race two processes with different sluice homes for the last instance of a quota.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import sluice
from sluice.errors import SpecError
from sluice.jobs.instance_types import quota_lock
from sluice.metadata import MetadataStore, MetricPoint, open_metadata
from sluice.processing import ScriptProcessor
from sluice.workflow.pipeline_context import PipelineSession
from tests.pipelines import cached_pipeline, run_pipeline
from tests.waiting import wait_until

ROLE = sluice.get_execution_role()
DEADLINE = 60.0
KIND = "ProcessingJob"




def postgres_rows(url: str, sql: str) -> list[tuple]:
    """Rows read straight from the PostgreSQL database, past sluice: the record really is there."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty metadata database: a SQLite file, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sluice.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url: str) -> MetadataStore:
    return open_metadata(store_url)


def python(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter with this test's environment; its standard output."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextlib.contextmanager
def started_together(code: str, argvs: list[list[str]]) -> Iterator[list[subprocess.Popen]]:
    """Start one interpreter per argv running ``code``; each prints ``ready`` once set up, then waits for a line
    on its standard input. Yields once all are ready, so what they do next starts at the same moment; they are
    sent ``go`` on entry and killed if still running on exit."""
    procs = [subprocess.Popen([sys.executable, "-c", code, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=os.environ.copy())
             for argv in argvs]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line == "ready\n", f"{line!r}: {proc.stderr.read() if proc.stderr else ''}"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


# ---- the contract, on both databases ------------------------------------------------------------------------


def test_jobs_are_recorded_read_listed_and_updated(store):
    store.create_job(KIND, "first-job", "InProgress", {"ProcessingJobName": "first-job"}, {"Step": 1})
    store.create_job(KIND, "second-job", "InProgress", {"ProcessingJobName": "second-job"}, {"Step": 1})
    store.create_job("TrainingJob", "first-job", "InProgress", {}, {})  # names are unique per kind only
    with pytest.raises(SpecError, match="ResourceInUse: a ProcessingJob named 'first-job' already exists"):
        store.create_job(KIND, "first-job", "InProgress", {}, {})

    row = store.get_job(KIND, "first-job")
    assert row is not None and row.request == {"ProcessingJobName": "first-job"} and row.record == {"Step": 1}
    assert row.driver_pid == os.getpid() and row.driver_is_alive() and not row.stop_requested
    assert [r.name for r in store.list_jobs(KIND)] == ["second-job", "first-job"]  # newest first
    assert [r.name for r in store.list_jobs(KIND, limit=1)] == ["second-job"]

    assert store.update_job(KIND, "first-job", record={"Step": 2, "Nested": {"a": [1, None]}}, status="Completed",
                            allowed_from=["InProgress"])
    assert not store.update_job(KIND, "first-job", status="Failed", allowed_from=["InProgress", "Stopping"])
    row = store.get_job(KIND, "first-job")
    assert row is not None and (row.status, row.record) == ("Completed", {"Step": 2, "Nested": {"a": [1, None]}})
    assert [r.name for r in store.list_jobs(KIND, status="Completed")] == ["first-job"]
    assert [r.name for r in store.jobs_in_status(KIND, ["InProgress", "Stopping"])] == ["second-job"]

    assert store.request_stop(KIND, "second-job") and store.stop_requested(KIND, "second-job")
    assert not store.request_stop(KIND, "no-such-job") and store.get_job(KIND, "no-such-job") is None


def test_job_names_match_without_regard_to_case(store):
    store.create_job(KIND, "Abalone-Prep-ABC", "InProgress", {}, {})
    store.create_job(KIND, "other-job", "InProgress", {}, {})
    # An ARN spells the name in lower case; the job must still be found by it, under its own spelling.
    row = store.get_job(KIND, "abalone-prep-abc")
    assert row is not None and row.name == "Abalone-Prep-ABC"
    assert store.get_job("TrainingJob", "abalone-prep-abc") is None
    # NameContains ignores case too, and its text is matched literally (no LIKE wildcards).
    assert [r.name for r in store.list_jobs(KIND, name_contains="PREP")] == ["Abalone-Prep-ABC"]
    assert store.list_jobs(KIND, name_contains="%") == []
    assert store.list_jobs(KIND, name_contains="Prep_") == []


def test_a_job_name_of_63_characters_is_kept_and_a_longer_one_refused_on_every_database(store):
    name = "n" * 60 + "-63"
    store.create_job(KIND, name, "InProgress", {}, {})
    store.add_metrics(KIND, name, [MetricPoint("loss", 0.5, 1.0, "algo-1"), MetricPoint("loss", 0.25, 2.0, "algo-1")])
    row = store.get_job(KIND, name.upper())
    assert row is not None and row.name == name
    assert [(p.value, p.host) for p in store.metrics(KIND, name, "loss")] == [(0.5, "algo-1"), (0.25, "algo-1")]
    assert store.update_job(KIND, name, status="Completed", allowed_from=["InProgress"])

    longer = "n" * 64
    with pytest.raises(SpecError, match=f"ProcessingJob name '{longer}' has 64 characters; at most 63 are allowed"):
        store.create_job(KIND, longer, "InProgress", {}, {})
    assert store.get_job(KIND, longer) is None  # looking a too-long name up is no error, it finds nothing

    pipeline = "p" * 256  # a pipeline's name may have 256 characters
    store.create_resource("Pipeline", pipeline, {"PipelineName": pipeline})
    resource = store.get_resource("Pipeline", pipeline)
    assert resource is not None and resource.record == {"PipelineName": pipeline}
    with pytest.raises(SpecError, match="has 257 characters; at most 256"):
        store.create_resource("Pipeline", pipeline + "p", {})


def test_of_two_threads_racing_to_end_a_job_exactly_one_wins(store):
    names = [f"raced-{i}" for i in range(10)]
    for name in names:
        store.create_job(KIND, name, "InProgress", {}, {})
    barrier = threading.Barrier(2)
    won: dict[str, list[str]] = {"Completed": [], "Stopped": []}

    def end_all(status: str) -> None:
        for name in names:
            barrier.wait()
            if store.update_job(KIND, name, status=status, allowed_from=["InProgress", "Stopping"]):
                won[status].append(name)

    threads = [threading.Thread(target=end_all, args=(s,)) for s in won]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won["Completed"] + won["Stopped"]) == sorted(names), won  # each job: exactly one winner
    for status, winners in won.items():
        for name in winners:
            row = store.get_job(KIND, name)
            assert row is not None and row.status == status


RACER = """
import sys
from sluice.metadata import open_metadata
store = open_metadata(sys.argv[1])
store.get_job("ProcessingJob", "warm-up")
print("ready", flush=True)
sys.stdin.readline()
for name in sys.argv[3:]:
    if store.update_job("ProcessingJob", name, status=sys.argv[2], allowed_from=["InProgress", "Stopping"]):
        print(name, flush=True)
"""


def test_of_two_processes_racing_to_end_a_job_exactly_one_wins(store, store_url):
    names = [f"raced-{i}" for i in range(20)]
    for name in names:
        store.create_job(KIND, name, "InProgress", {}, {})
    with started_together(RACER, [[store_url, status, *names] for status in ("Completed", "Stopped")]) as procs:
        outputs = [proc.communicate(timeout=DEADLINE) for proc in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    completed, stopped = (out.split() for out, _ in outputs)
    assert sorted(completed + stopped) == sorted(names)
    assert {n: store.get_job(KIND, n).status for n in names} == \
        {**dict.fromkeys(completed, "Completed"), **dict.fromkeys(stopped, "Stopped")}


OPENER = """
import sys
print("ready", flush=True)
sys.stdin.readline()
from sluice.metadata import open_metadata
open_metadata(sys.argv[1]).create_job("ProcessingJob", sys.argv[2], "InProgress", {}, {})
"""


def test_processes_opening_a_fresh_database_at_once_all_create_their_jobs(store_url):
    names = [f"opener-{i}" for i in range(3)]
    with started_together(OPENER, [[store_url, name] for name in names]) as procs:
        outputs = [proc.communicate(timeout=DEADLINE) for proc in procs]
    assert [p.returncode for p in procs] == [0] * len(names), [err for _, err in outputs]
    assert sorted(r.name for r in open_metadata(store_url).list_jobs(KIND)) == names


def test_pipeline_steps_are_written_once_each_and_listed_in_the_order_they_started(store):
    store.put_step("exec1", "Prep", "Executing", {"StepName": "Prep"})
    store.put_step("exec1", "Train", "Executing", {"StepName": "Train"})
    store.put_step("exec2", "Prep", "Executing", {"StepName": "Prep", "Other": True})
    started = store.list_steps("exec1")[0].started_at
    store.put_step("exec1", "Prep", "Succeeded", {"StepName": "Prep", "Properties": {"Out": "s3://b/k"}})

    steps = store.list_steps("exec1")
    assert [(s.step, s.status) for s in steps] == [("Prep", "Succeeded"), ("Train", "Executing")]
    assert steps[0].record == {"StepName": "Prep", "Properties": {"Out": "s3://b/k"}}
    assert steps[0].started_at == started <= steps[0].updated_at  # a rewrite keeps when the step started
    assert [s.record for s in store.list_steps("exec2")] == [{"StepName": "Prep", "Other": True}]



def test_a_step_written_while_another_transaction_inserts_it_waits_and_then_updates_it(postgres_url):
    """PostgreSQL: a reader marks a step Failed while the driver's insert of it is not yet committed. The write
    must wait for that insert and then update the row, not insert a second one and fail on the primary key."""
    store = open_metadata(postgres_url)
    engine = create_engine(postgres_url)
    errors: list[Exception] = []

    def mark_failed() -> None:
        try:
            store.put_step("exec1", "Racy", "Failed", {"StepStatus": "Failed"})
        except Exception as exc:  # recorded for the assertion below
            errors.append(exc)

    try:
        with engine.connect() as driver:
            driver.execute(text("insert into pipeline_steps (execution, step, status, record, started_at, updated_at)"
                                " values ('exec1', 'Racy', 'Executing', '{}', 1.0, 1.0)"))
            writer = threading.Thread(target=mark_failed)
            writer.start()
            waiting = ("select count(*) from pg_stat_activity where wait_event_type = 'Lock' "
                       "and datname = current_database()")
            wait_until(lambda: postgres_rows(postgres_url, waiting)[0][0] == 1,
                       "the second write to wait for the uncommitted insert")
            driver.commit()
        writer.join()
    finally:
        engine.dispose()
    assert errors == []
    [racy] = store.list_steps("exec1")
    assert (racy.status, racy.record, racy.started_at) == ("Failed", {"StepStatus": "Failed"}, 1.0)


def test_cache_entries_come_newest_first_and_filter_by_step_key_and_age(store):
    for step, key in (("Double", "k1"), ("Double", "k2"), ("Report", "k1")):
        store.add_cache_entry("cached", step, key, {"Arguments": [step, key]}, f"arn:{step}:{key}",
                              {"StepName": step, "Metadata": {"ProcessingJob": {"Arn": f"job-{key}"}}})
    store.add_cache_entry("other-pipeline", "Double", "k1", {}, "arn:other", {})

    entries = store.cache_entries("cached")
    assert [(e.step, e.key) for e in entries] == [("Report", "k1"), ("Double", "k2"), ("Double", "k1")]
    assert entries[0].parts == {"Arguments": ["Report", "k1"]} and entries[0].execution_arn == "arn:Report:k1"
    assert entries[0].record["Metadata"] == {"ProcessingJob": {"Arn": "job-k1"}}
    assert [e.execution_arn for e in store.cache_entries("cached", step="Double", key="k1")] == ["arn:Double:k1"]
    assert [e.step for e in store.cache_entries("cached", key="k1")] == ["Report", "Double"]
    assert [e.key for e in store.cache_entries("cached", limit=1)] == ["k1"]
    not_before = entries[1].created_at
    assert [e.id for e in store.cache_entries("cached", not_before=not_before)] == \
        [e.id for e in entries if e.created_at >= not_before]
    assert entries[1].id in [e.id for e in store.cache_entries("cached", not_before=not_before)]
    assert store.cache_entries("cached", not_before=entries[0].created_at + 1) == []


def test_resources_are_created_listed_by_exact_prefix_updated_and_deleted(store):
    for name in ("churn/1", "churn/2", "Churn/1", "churn-v2/1"):
        store.create_resource("ModelPackage", name, {"Name": name})
    with pytest.raises(SpecError, match="ResourceInUse: a ModelPackage named 'churn/1' already exists"):
        store.create_resource("ModelPackage", "churn/1", {})
    # A group's versions are the names under "<group>/": case and '_' are matched exactly, on every database.
    assert [r.name for r in store.list_resources("ModelPackage", name_prefix="churn/")] == ["churn/1", "churn/2"]
    assert [r.name for r in store.list_resources("ModelPackage", name_prefix="Churn/")] == ["Churn/1"]
    assert store.list_resources("ModelPackage", name_prefix="churn_") == []
    assert len(store.list_resources("ModelPackage")) == 4

    assert store.update_resource("ModelPackage", "churn/2", {"Name": "churn/2", "Approved": True})
    row = store.get_resource("ModelPackage", "churn/2")
    assert row is not None and row.record == {"Name": "churn/2", "Approved": True} and row.updated_at >= row.created_at
    assert store.delete_resource("ModelPackage", "churn/2") and not store.delete_resource("ModelPackage", "churn/2")
    assert store.get_resource("ModelPackage", "churn/2") is None
    assert not store.update_resource("ModelPackage", "churn/2", {})


def test_an_unreachable_postgresql_server_is_refused_naming_the_url_and_the_fix(postgres_server):
    url = postgres_server.url("no_such_database")
    with pytest.raises(SpecError) as refused:
        open_metadata(url)
    message = str(refused.value)
    assert message.startswith(f"cannot open the metadata database {url}: ")
    assert 'database "no_such_database" does not exist' in message
    assert "SLUICE_METADATA_URL" in message and "createdb" in message


# ---- sluice on PostgreSQL, end to end -------------------------------------------------------------------------


DESCRIBE_JOB = """
import json, sys
import sluice
print(json.dumps(sluice.Session().describe_processing_job(sys.argv[1]), default=str))
"""


def test_a_processing_job_is_recorded_in_postgresql_and_described_from_another_process(postgres_home,
                                                                                      postgres_url, tmp_path):
    code = tmp_path / "hello.py"
    code.write_text("print('hello from postgres')\n")
    processor = ScriptProcessor(command=["python3"], image_uri=None, role=ROLE, instance_count=1,
                                instance_type="ml.m5.xlarge", sagemaker_session=sluice.Session())
    processor.run(code=str(code), job_name="Hello-On-Postgres", wait=True, logs=False)

    assert postgres_rows(postgres_url, "select kind, name, status from jobs") == \
        [("ProcessingJob", "Hello-On-Postgres", "Completed")]
    assert not (postgres_home / "sluice.db").exists()  # nothing went to the default SQLite file
    seen = json.loads(python(DESCRIBE_JOB, "hello-on-postgres"))  # by the ARN's lower-case spelling
    assert seen["ProcessingJobName"] == "Hello-On-Postgres" and seen["ProcessingJobStatus"] == "Completed"


READ_EXECUTION = """
import json, sys
from sluice.session import Session
from sluice.workflow.execution import list_executions, open_execution
config = Session().config
execution = open_execution(config, sys.argv[1])
print(json.dumps({"describe": execution.describe(), "steps": execution.list_steps(),
                  "listed": list_executions(config, "cached")}, default=str))
"""


def test_a_cached_pipeline_runs_on_postgresql_and_another_process_reads_its_execution(postgres_home,
                                                                                    postgres_url, tmp_path):
    sess = PipelineSession()
    sess.upload_string_as_file_body("3\n", sess.default_bucket(), "raw/n.txt")
    first = run_pipeline(cached_pipeline(sess, tmp_path))
    second = run_pipeline(cached_pipeline(sess, tmp_path))

    seen = json.loads(python(READ_EXECUTION, second.arn))
    assert seen["describe"]["PipelineExecutionStatus"] == "Succeeded"
    assert seen["describe"]["PipelineExecutionArn"] == second.arn
    steps = {s["StepName"]: s for s in seen["steps"]}
    assert [s["StepName"] for s in seen["steps"]] == ["Report", "Double"]  # most recently started first
    assert {n: s["StepStatus"] for n, s in steps.items()} == {"Double": "Succeeded", "Report": "Succeeded"}
    assert steps["Double"]["CacheHitResult"] == {"SourcePipelineExecutionArn": first.arn}  # the cache entry
    assert "CacheHitResult" not in steps["Report"]
    assert [(e["PipelineExecutionArn"], e["PipelineExecutionStatus"]) for e in seen["listed"]] == \
        [(second.arn, "Succeeded"), (first.arn, "Succeeded")]
    # The records are PostgreSQL's: two executions, three steps run as jobs (Double once), one cache entry.
    assert postgres_rows(postgres_url, "select status, count(*) from jobs where kind = 'PipelineExecution' "
                                       "group by status") == [("Succeeded", 2)]
    assert postgres_rows(postgres_url, "select count(*) from jobs where kind = 'ProcessingJob' "
                                       "and status = 'Completed'") == [(3,)]
    assert postgres_rows(postgres_url, "select pipeline, step from cache_entries") == [("cached", "Double")]


QUOTA_RACER = """
import sys
import sluice
from sluice.errors import ResourceLimitExceeded
from sluice.processing import Processor

proc = Processor(role=sluice.get_execution_role(), image_uri=None, instance_count=1, instance_type="ml.m5.large",
                 entrypoint=["python3", "-c", "import time; time.sleep(3600)"])
proc.sagemaker_session.metadata.list_jobs()  # connected before the race starts
print("ready", flush=True)
sys.stdin.readline()
try:
    proc.run(job_name=sys.argv[1], wait=False, logs=False)
    print("started", flush=True)
except ResourceLimitExceeded as exc:
    print("refused", str(exc).replace(chr(10), " "), flush=True)
sys.stdin.readline()  # this process drives the job, so it holds its instance until told to end
if proc.jobs:
    proc.jobs[-1].stop()
    proc.jobs[-1].wait(logs=False)
"""


def waiting_for_advisory_locks(url: str) -> int:
    return postgres_rows(url, "select count(*) from pg_locks where locktype = 'advisory' and not granted and "
                              "database = (select oid from pg_database where datname = current_database())")[0][0]


def test_of_two_processes_on_different_hosts_racing_for_the_last_instance_exactly_one_starts(
        postgres_home, postgres_url, tmp_path):
    """Two sluice homes stand for two hosts: only the database is shared, so only a lock in it can serialise
    them. This process holds the quota lock until both racers wait for it, so both reach it before either has
    counted the instances in use; then exactly one job may start."""
    homes = []
    for name in ("host-a", "host-b"):
        home = tmp_path / name
        home.mkdir()
        (home / "config.toml").write_text('[quotas]\n"ml.m5.large" = 1\n')
        homes.append(home)
    env = {**os.environ, "SLUICE_METADATA_URL": postgres_url}
    procs = [subprocess.Popen([sys.executable, "-c", QUOTA_RACER, f"racer-{i}"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**env, "SLUICE_HOME": str(home)})
             for i, home in enumerate(homes)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line == "ready\n", f"{line!r}: {proc.stderr.read() if proc.stderr else ''}"
        with quota_lock(sluice.Session().config):
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            wait_until(lambda: waiting_for_advisory_locks(postgres_url) == 2, "both racers to wait for the lock")
        outcomes = {f"racer-{i}": proc.stdout.readline().strip() for i, proc in enumerate(procs)}
        started = [name for name, said in outcomes.items() if said == "started"]
        refused = {name: said for name, said in outcomes.items() if said.startswith("refused")}
        assert len(started) == 1 and len(refused) == 1, outcomes
        [message] = refused.values()
        assert "'ml.m5.large for processing job usage' is 1 Instances, with current utilization of 1 Instances" \
            in message and repr(started[0]) in message
        assert postgres_rows(postgres_url, "select name, status from jobs") == [(started[0], "InProgress")]
        for proc in procs:
            proc.stdin.write("end\n")
            proc.stdin.flush()
        for proc in procs:
            assert proc.wait(timeout=DEADLINE) == 0, proc.stderr.read() if proc.stderr else ""
        assert postgres_rows(postgres_url, "select name, status from jobs") == [(started[0], "Stopped")]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
