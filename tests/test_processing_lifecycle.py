"""A processing job's life: failure reasons, timeout, stop from another process, output visibility."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sluice
from sluice.errors import ExecutionError
from sluice.processing import ProcessingInput, ProcessingJob, ProcessingOutput, ScriptProcessor
from tests.waiting import wait_until


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path




@pytest.fixture
def sess(sluice_home: Path) -> sluice.Session:
    return sluice.Session()


def processor(sess, count: int = 1, **kw) -> ScriptProcessor:
    return ScriptProcessor(command=["python3"], image_uri=None, role=sluice.get_execution_role(),
                           instance_count=count, instance_type="ml.m5.xlarge", sagemaker_session=sess, **kw)


def test_failure_reason_comes_from_opt_ml_output_message(sess, tmp_path):
    code = write(tmp_path / "fail.py", """
        import os, sys
        os.makedirs("/opt/ml/processing/output/o", exist_ok=True)
        open("/opt/ml/processing/output/o/partial.txt", "w").write("half")
        open("/opt/ml/output/message", "w").write("bad column 'ndvi' in scene 7")
        sys.exit(3)
    """)
    out = f"s3://{sess.default_bucket()}/failed-out"
    proc = processor(sess)
    with pytest.raises(ExecutionError, match="bad column 'ndvi' in scene 7"):
        proc.run(code=str(code), logs=False,
                 outputs=[ProcessingOutput(source="/opt/ml/processing/output/o", destination=out)])
    desc = proc.jobs[-1].describe()
    assert desc["ProcessingJobStatus"] == "Failed"
    assert desc["FailureReason"] == "AlgorithmError: bad column 'ndvi' in scene 7"
    assert desc["ExitMessage"] == "bad column 'ndvi' in scene 7"
    assert list(sess.store.list(sess.default_bucket(), "failed-out")) == []  # nothing half-written


def test_failure_without_message_names_exit_code_and_last_log_lines(sess, tmp_path):
    code = write(tmp_path / "crash.py", """
        print("loading scenes")
        raise RuntimeError("scene 3 is corrupt")
    """)
    proc = processor(sess)
    with pytest.raises(ExecutionError):
        proc.run(code=str(code), logs=False)
    reason = proc.jobs[-1].describe()["FailureReason"]
    assert "algo-1 exited with code 1" in reason
    assert "RuntimeError: scene 3 is corrupt" in reason


def test_one_failing_instance_fails_the_job_and_stops_the_others(sess, tmp_path):
    code = write(tmp_path / "one_fails.py", f"""
        import json, os, sys, time
        host = json.load(open("/opt/ml/config/resourceconfig.json"))["current_host"]
        if host == "algo-2":  # fail once the others are inside their try, so the stop cannot miss it
            deadline = time.monotonic() + 60
            while not all(os.path.exists("{tmp_path}/ready-" + h) for h in ("algo-1", "algo-3")):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            sys.exit(7)
        try:
            open("{tmp_path}/ready-" + host, "w").close()
            time.sleep(600)
        except KeyboardInterrupt:  # processing's stop signal is SIGINT
            open("{tmp_path}/interrupted-" + host, "w").close()
            raise
    """)
    proc = processor(sess, 3)
    with pytest.raises(ExecutionError, match="algo-2 exited with code 7"):
        proc.run(code=str(code), logs=False)
    # The sleeping instances were ended, not waited for.
    assert sorted(p.name for p in tmp_path.glob("interrupted-*")) == ["interrupted-algo-1", "interrupted-algo-3"]


def test_max_runtime_stops_the_job_with_a_reason(sess, tmp_path, caplog):
    code = write(tmp_path / "forever.py", "import time\ntime.sleep(600)\n")
    proc = processor(sess, 2, max_runtime_in_seconds=1)
    proc.run(code=str(code), logs=False)  # Stopped warns, as the SDK does; it does not raise
    desc = proc.jobs[-1].describe()
    assert desc["ProcessingJobStatus"] == "Stopped"
    assert "MaxRuntimeInSeconds=1" in desc["FailureReason"]
    assert "Stopped" in caplog.text


def test_stop_from_another_process_ends_every_instance(sess, tmp_path):
    marker_dir = tmp_path / "started"
    marker_dir.mkdir()
    code = write(tmp_path / "block.py", f"""
        import json, time
        host = json.load(open("/opt/ml/config/resourceconfig.json"))["current_host"]
        open("{marker_dir}/" + host, "w").close()
        time.sleep(600)
    """)
    out = f"s3://{sess.default_bucket()}/never"
    proc = processor(sess, 2)
    proc.run(code=str(code), wait=False, logs=False,
             outputs=[ProcessingOutput(source="/opt/ml/processing/output/o", destination=out)])
    job = proc.jobs[-1]
    wait_until(lambda: len(list(marker_dir.iterdir())) == 2, "both instances to start")
    cli = subprocess.run([sys.executable, "-m", "sluice.cli", "jobs", "stop", job.job_name],
                         capture_output=True, text=True, env=os.environ.copy())
    assert cli.returncode == 0, cli.stderr
    job.wait(logs=False)
    desc = job.describe()
    assert desc["ProcessingJobStatus"] == "Stopped"
    assert "FailureReason" not in desc
    assert list(sess.store.list(sess.default_bucket(), "never")) == []


def test_another_process_can_list_describe_and_read_logs(sess, tmp_path):
    code = write(tmp_path / "hello.py", "print('hello from algo')\n")
    proc = processor(sess, 2, base_job_name="visible")
    proc.run(code=str(code), logs=False)
    name = proc.jobs[-1].job_name
    env = os.environ.copy()

    def cli(*args: str) -> str:
        res = subprocess.run([sys.executable, "-m", "sluice.cli", *args], capture_output=True, text=True, env=env)
        assert res.returncode == 0, res.stderr
        return res.stdout

    listed = json.loads(cli("jobs", "list", "--json"))
    assert [(j["Name"], j["Status"]) for j in listed] == [(name, "Completed")]
    assert json.loads(cli("jobs", "describe", name))["ProcessingJobStatus"] == "Completed"
    logs = cli("jobs", "logs", name)
    assert "[algo-1] hello from algo" in logs and "[algo-2] hello from algo" in logs
    assert ProcessingJob.from_processing_name(sess, name).describe()["ProcessingJobName"] == name


def test_a_job_whose_driver_died_is_marked_failed_not_left_in_progress(sess, tmp_path):
    marker = tmp_path / "running"
    code = write(tmp_path / "block.py", f"""
        open("{marker}", "w").close()
        import time; time.sleep(600)
    """)
    driver = write(tmp_path / "driver.py", f"""
        import sluice
        from sluice.processing import ScriptProcessor
        p = ScriptProcessor(command=["python3"], image_uri=None, role=sluice.get_execution_role(), instance_count=1,
                            instance_type="ml.m5.xlarge")
        p.run(code={str(code)!r}, job_name="orphan", wait=False, logs=False)
    """)
    child = subprocess.Popen([sys.executable, str(driver)], env=os.environ.copy())
    def started() -> bool:
        assert child.poll() is None, "the driver process exited before the job started"
        return marker.exists()

    wait_until(started, "the job's script to start")
    child.send_signal(signal.SIGKILL)
    child.wait()
    desc = sess.describe_processing_job("orphan")
    assert desc["ProcessingJobStatus"] == "Failed"
    assert "ended before the job did" in desc["FailureReason"]


def test_end_of_job_outputs_appear_only_after_success_and_continuous_ones_while_running(sess, tmp_path):
    go = tmp_path / "go"
    written = tmp_path / "written"
    code = write(tmp_path / "two_outputs.py", f"""
        import os, time
        for d in ("end", "cont"):
            os.makedirs(f"/opt/ml/processing/output/{{d}}", exist_ok=True)
        open("/opt/ml/processing/output/end/result.txt", "w").write("final")
        open("/opt/ml/processing/output/cont/progress.txt", "w").write("epoch 1")
        open("{written}", "w").close()
        while not os.path.exists("{go}"):
            time.sleep(0.02)
    """)
    bucket = sess.default_bucket()
    proc = processor(sess)
    proc.run(code=str(code), wait=False, logs=False, outputs=[
        ProcessingOutput(source="/opt/ml/processing/output/end", destination=f"s3://{bucket}/end"),
        ProcessingOutput(source="/opt/ml/processing/output/cont", destination=f"s3://{bucket}/cont",
                         s3_upload_mode="Continuous"),
    ])
    job = proc.jobs[-1]
    wait_until(written.exists, "the script to write its outputs")
    wait_until(lambda: sess.store.exists(bucket, "cont/progress.txt"), "the Continuous output to upload")
    assert job.describe()["ProcessingJobStatus"] == "InProgress"
    assert not sess.store.exists(bucket, "end/result.txt")  # EndOfJob: not visible while running
    go.touch()
    job.wait(logs=False)
    assert sess.store.get_bytes(bucket, "end/result.txt") == b"final"


def test_without_a_sandbox_paths_are_redirected_and_sluice_says_so(sluice_home, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SLUICE_SANDBOX", "none")
    sluice.config.reset_config()
    sess = sluice.Session()
    bucket = sess.default_bucket()
    sess.store.put(bucket, "in/a.txt", b"abc")
    code = write(tmp_path / "toolkit_style.py", """
        import os, sys
        base = os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml")
        data = open(os.path.join(sys.argv[1], "a.txt")).read()
        os.makedirs(f"{base}/processing/output/o", exist_ok=True)
        open(f"{base}/processing/output/o/copy.txt", "w").write(data)
    """)
    processor(sess).run(code=str(code), logs=False, arguments=["/opt/ml/processing/input/d"],
                        inputs=[ProcessingInput(source=f"s3://{bucket}/in", destination="/opt/ml/processing/input/d")],
                        outputs=[ProcessingOutput(source="/opt/ml/processing/output/o", destination=f"s3://{bucket}/o")])
    assert sess.store.get_bytes(bucket, "o/copy.txt") == b"abc"
    assert sess.store.get_bytes(bucket, "in/a.txt") == b"abc"  # without the sandbox inputs are copies


def _driver_script(tmp_path: Path, code: Path, *, wait: bool, logs: bool, job_name: str) -> Path:
    return write(tmp_path / f"driver-{job_name}.py", f"""
        import sluice
        from sluice.processing import ScriptProcessor
        p = ScriptProcessor(command=["python3"], image_uri=None, role=sluice.get_execution_role(), instance_count=1,
                            instance_type="ml.m5.xlarge")
        p.run(code={str(code)!r}, job_name={job_name!r}, wait={wait}, logs={logs})
    """)


def test_a_closed_terminal_does_not_hang_or_fail_the_job(sess, tmp_path):
    code = write(tmp_path / "chatty.py", "for i in range(500):\n    print('line', i)\n")
    driver = _driver_script(tmp_path, code, wait=True, logs=True, job_name="chatty")
    proc = subprocess.Popen([sys.executable, str(driver)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=os.environ.copy())
    assert proc.stdout is not None
    proc.stdout.readline()  # like `| head -1`: read a line, then close the pipe
    proc.stdout.close()
    proc.wait(timeout=120)
    assert sess.describe_processing_job("chatty")["ProcessingJobStatus"] == "Completed"


def test_logs_are_readable_from_another_process_while_the_job_runs(sess, tmp_path):
    go = tmp_path / "go"
    code = write(tmp_path / "slow.py", f"""
        import os, time
        print("first line", flush=True)
        while not os.path.exists("{go}"):
            time.sleep(0.02)
    """)
    proc = processor(sess)
    proc.run(code=str(code), wait=False, logs=False, job_name="live-logs")
    env = os.environ.copy()

    def logs_so_far() -> str:
        return subprocess.run([sys.executable, "-m", "sluice.cli", "jobs", "logs", "live-logs"], capture_output=True,
                              text=True, env=env).stdout

    wait_until(lambda: "[algo-1] first line" in logs_so_far(), "the log line to show in another process")
    go.touch()
    proc.jobs[-1].wait(logs=False)


def test_a_driver_started_with_sigint_ignored_still_stops_its_scripts(sess, tmp_path):
    code = write(tmp_path / "report.py", """
        import os, signal
        os.makedirs("/opt/ml/processing/output/o", exist_ok=True)
        ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        open("/opt/ml/processing/output/o/sigint.txt", "w").write(str(ignored))
    """)
    driver = write(tmp_path / "bg-driver.py", f"""
        import sluice
        from sluice.processing import ScriptProcessor, ProcessingOutput
        p = ScriptProcessor(command=["python3"], image_uri=None, role=sluice.get_execution_role(), instance_count=1,
                            instance_type="ml.m5.xlarge")
        p.run(code={str(code)!r}, job_name="bg", logs=False,
              outputs=[ProcessingOutput(source="/opt/ml/processing/output/o", destination="s3://{sess.default_bucket()}/bg")])
    """)
    subprocess.run([sys.executable, str(driver)], check=True, env=os.environ.copy(),
                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # as `driver &` in a shell
    assert sess.store.get_bytes(sess.default_bucket(), "bg/sigint.txt") == b"False"


def test_without_a_sandbox_a_dead_driver_takes_its_scripts_with_it(sluice_home, tmp_path, monkeypatch):
    monkeypatch.setenv("SLUICE_SANDBOX", "none")
    sluice.config.reset_config()
    marker = tmp_path / "pid"
    code = write(tmp_path / "orphan.py", f"""
        import os, time
        open("{marker}", "w").write(str(os.getpid()))
        time.sleep(600)
    """)
    driver = _driver_script(tmp_path, code, wait=False, logs=False, job_name="orphan-nobox")
    child = subprocess.Popen([sys.executable, str(driver)], env=os.environ.copy())
    wait_until(lambda: marker.exists() and marker.read_text(), "the script to start")
    pid = int(marker.read_text())
    child.send_signal(signal.SIGKILL)
    child.wait()

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return open(f"/proc/{pid}/stat").read().split()[2] == "Z"  # a zombie has ended too

    wait_until(gone, "the orphaned script to end")
    listed = subprocess.run([sys.executable, "-m", "sluice.cli", "jobs", "list", "--json"], capture_output=True,
                            text=True, env=os.environ.copy(), check=True).stdout
    assert json.loads(listed)[0]["Status"] == "Failed"  # listing notices the dead driver too


def test_wait_prints_the_logs_of_a_job_started_without_waiting(sess, tmp_path, capsys):
    code = write(tmp_path / "hello.py", "print('hello from a background job')\n")
    proc = processor(sess)
    proc.run(code=str(code), wait=False, logs=False)
    proc.jobs[-1].wait(logs=True)
    assert "[algo-1] hello from a background job" in capsys.readouterr().out


def test_a_misspelt_config_section_is_refused(sluice_home):
    (sluice_home / "config.toml").write_text('[storge]\nendpoint_url = "http://127.0.0.1:9"\n')
    sluice.config.reset_config()
    with pytest.raises(sluice.errors.SpecError, match=r"unknown section\(s\) \[storge\]"):
        sluice.Session()
