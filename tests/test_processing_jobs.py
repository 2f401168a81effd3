"""Processing jobs through the public API: scripts with hard-coded /opt/ml paths, sharding, modes, outputs."""

from __future__ import annotations

import gzip
import json
import os
import textwrap
from pathlib import Path

import pytest

import sluice
from sluice.processing import ProcessingInput, ProcessingOutput, ScriptProcessor
from sluice.s3 import S3Downloader, S3Uploader

# A script as a user writes it for SageMaker: hard-coded paths, resourceconfig.json for its host.
REPORT_SCRIPT = textwrap.dedent(
    """
    import json, os
    rc = json.load(open("/opt/ml/config/resourceconfig.json"))
    cfg = json.load(open("/opt/ml/config/processingjobconfig.json"))
    root = "/opt/ml/processing/input/data"
    files = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)
    os.makedirs("/opt/ml/processing/output/report", exist_ok=True)
    with open(f"/opt/ml/processing/output/report/{rc['current_host']}.json", "w") as fh:
        json.dump({"host": rc["current_host"], "hosts": rc["hosts"], "files": files,
                   "job": cfg["ProcessingJobName"],
                   "download_mode": cfg["ProcessingInputs"][0]["S3Input"]["S3DownloadMode"]}, fh)
    print("saw", len(files), "files")
    """
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def sess(sluice_home: Path) -> sluice.Session:
    return sluice.Session()


def upload_objects(sess: sluice.Session, tmp_path: Path, count: int, prefix: str = "raw") -> str:
    src = tmp_path / "src"
    for i in range(count):
        write(src / f"part-{i:03d}.csv", f"{i}\n")
    return sess.upload_data(str(src), bucket=sess.default_bucket(), key_prefix=prefix)


def reports(sess: sluice.Session, uri: str) -> dict[str, dict]:
    out = {}
    for obj in S3Downloader.list(uri, sagemaker_session=sess):
        data = json.loads(S3Downloader.read_file(obj, sagemaker_session=sess))
        out[data["host"]] = data
    return out


def script_processor(sess: sluice.Session, count: int = 1, **kw) -> ScriptProcessor:
    return ScriptProcessor(command=["python3"], image_uri=None, role=sluice.get_execution_role(),
                           instance_count=count, instance_type="ml.m5.xlarge", sagemaker_session=sess, **kw)


def test_sharded_by_s3_key_gives_each_instance_a_disjoint_balanced_shard(sess, tmp_path):
    raw = upload_objects(sess, tmp_path, 10)
    code = write(tmp_path / "report.py", REPORT_SCRIPT)
    out = f"s3://{sess.default_bucket()}/reports"
    proc = script_processor(sess, 4)
    proc.run(code=str(code), logs=False,
             inputs=[ProcessingInput(source=raw, destination="/opt/ml/processing/input/data/",
                                     s3_data_distribution_type="ShardedByS3Key")],
             outputs=[ProcessingOutput(source="/opt/ml/processing/output/report", destination=out)])
    got = reports(sess, out)
    assert sorted(got) == ["algo-1", "algo-2", "algo-3", "algo-4"]
    shards = [got[h]["files"] for h in sorted(got)]
    every = [f for shard in shards for f in shard]
    assert sorted(every) == [f"part-{i:03d}.csv" for i in range(10)]  # union is every key, no overlap
    assert len(every) == len(set(every))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1  # balanced by count
    # The documented rule: keys in S3 order, object i to algo-(i mod n + 1).
    assert got["algo-1"]["files"] == ["part-000.csv", "part-004.csv", "part-008.csv"]
    assert all(r["hosts"] == ["algo-1", "algo-2", "algo-3", "algo-4"] for r in got.values())
    assert all(r["download_mode"] == "StartOfJob" for r in got.values())
    desc = proc.jobs[-1].describe()
    assert desc["ProcessingJobStatus"] == "Completed"
    assert desc["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 4
    assert desc["ProcessingInputs"][-1]["InputName"] == "code"


def test_fully_replicated_gives_every_instance_every_object(sess, tmp_path):
    raw = upload_objects(sess, tmp_path, 5)
    code = write(tmp_path / "report.py", REPORT_SCRIPT)
    out = f"s3://{sess.default_bucket()}/full"
    script_processor(sess, 2).run(
        code=str(code), logs=False,
        inputs=[ProcessingInput(source=raw, destination="/opt/ml/processing/input/data")],
        outputs=[ProcessingOutput(source="/opt/ml/processing/output/report", destination=out)])
    got = reports(sess, out)
    assert got["algo-1"]["files"] == got["algo-2"]["files"] == [f"part-{i:03d}.csv" for i in range(5)]


def test_instance_without_objects_gets_an_empty_directory_and_a_warning(sess, tmp_path, caplog):
    raw = upload_objects(sess, tmp_path, 2)
    code = write(tmp_path / "report.py", REPORT_SCRIPT)
    out = f"s3://{sess.default_bucket()}/sparse"
    script_processor(sess, 3).run(
        code=str(code), logs=False,
        inputs=[ProcessingInput(source=raw, destination="/opt/ml/processing/input/data",
                                s3_data_distribution_type="ShardedByS3Key")],
        outputs=[ProcessingOutput(source="/opt/ml/processing/output/report", destination=out)])
    got = reports(sess, out)
    assert got["algo-3"]["files"] == []
    assert "algo-3 get(s) no data" in caplog.text


def test_manifest_file_places_each_object_at_its_suffix_path(sess, tmp_path):
    bucket = sess.default_bucket()
    for key in ("data/a/one.csv", "data/b/two.csv", "data/c/skip.csv"):
        S3Uploader.upload_string_as_file_body("x", f"s3://{bucket}/{key}", sagemaker_session=sess)
    manifest = json.dumps([{"prefix": f"s3://{bucket}/data/"}, "a/one.csv", "b/two.csv"])
    uri = S3Uploader.upload_string_as_file_body(manifest, f"s3://{bucket}/m.json", sagemaker_session=sess)
    code = write(tmp_path / "report.py", REPORT_SCRIPT)
    out = f"s3://{bucket}/manifest-out"
    script_processor(sess).run(
        code=str(code), logs=False,
        inputs=[ProcessingInput(source=uri, destination="/opt/ml/processing/input/data",
                                s3_data_type="ManifestFile")],
        outputs=[ProcessingOutput(source="/opt/ml/processing/output/report", destination=out)])
    assert reports(sess, out)["algo-1"]["files"] == ["a/one.csv", "b/two.csv"]


PIPE_SCRIPT = textwrap.dedent(
    """
    import os, stat, sys
    path = "/opt/ml/processing/input/stream"
    assert stat.S_ISFIFO(os.stat(path).st_mode), "not a FIFO"
    data = open(path, "rb").read()
    os.makedirs("/opt/ml/processing/output/o", exist_ok=True)
    open("/opt/ml/processing/output/o/got.txt", "wb").write(data)
    """
)


@pytest.mark.parametrize("compression", ["None", "Gzip"])
def test_pipe_mode_streams_objects_in_key_order_through_a_fifo(sess, tmp_path, compression):
    bucket = sess.default_bucket()
    for i, word in enumerate(["alpha\n", "beta\n", "gamma\n"]):
        body = gzip.compress(word.encode()) if compression == "Gzip" else word.encode()
        sess.store.put(bucket, f"pipe/{i}.txt", body)
    code = write(tmp_path / "pipe.py", PIPE_SCRIPT)
    out = f"s3://{bucket}/pipe-out-{compression}"
    script_processor(sess).run(
        code=str(code), logs=False,
        inputs=[ProcessingInput(source=f"s3://{bucket}/pipe/", destination="/opt/ml/processing/input/stream",
                                s3_input_mode="Pipe", s3_compression_type=compression)],
        outputs=[ProcessingOutput(source="/opt/ml/processing/output/o", destination=out)])
    assert S3Downloader.read_file(f"{out}/got.txt", sagemaker_session=sess) == "alpha\nbeta\ngamma\n"


def test_local_source_and_default_output_land_where_the_sdk_puts_them(sess, tmp_path):
    src = tmp_path / "local-input"
    write(src / "x.txt", "hello")
    code = write(tmp_path / "copy.py", textwrap.dedent("""
        import shutil
        shutil.copytree("/opt/ml/processing/input/in", "/opt/ml/processing/output/out", dirs_exist_ok=True)
    """))
    proc = script_processor(sess, base_job_name="copy-job")
    proc.run(code=str(code), logs=False,
             inputs=[ProcessingInput(source=str(src), destination="/opt/ml/processing/input/in")],
             outputs=[ProcessingOutput(source="/opt/ml/processing/output/out")])
    name = proc.jobs[-1].job_name
    assert name.startswith("copy-job-")
    desc = proc.jobs[-1].describe()
    bucket = sess.default_bucket()
    assert desc["ProcessingInputs"][0]["S3Input"]["S3Uri"] == f"s3://{bucket}/{name}/input/input-1"
    assert desc["ProcessingInputs"][1]["S3Input"]["S3Uri"] == f"s3://{bucket}/{name}/input/code/copy.py"
    out_uri = desc["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    assert out_uri == f"s3://{bucket}/{name}/output/output-1"
    assert S3Downloader.read_file(f"{out_uri}/x.txt", sagemaker_session=sess) == "hello"


def test_inputs_cannot_be_modified_in_place_through_zero_copy_staging(sess, tmp_path):
    bucket = sess.default_bucket()
    sess.store.put(bucket, "imm/data.txt", b"original")
    code = write(tmp_path / "tamper.py", textwrap.dedent("""
        import os
        p = "/opt/ml/processing/input/d/data.txt"
        os.makedirs("/opt/ml/processing/output/o", exist_ok=True)
        st = os.stat(p)
        open("/opt/ml/processing/output/o/inode.txt", "w").write(f"{st.st_ino} {st.st_nlink}")
        for attempt in (lambda: open(p, "w").write("tampered"),
                        lambda: (os.chmod(p, 0o644), open(p, "w").write("tampered via chmod"))):
            try:
                attempt()
                print("wrote")
            except PermissionError:
                print("refused")
        os.remove(p)  # removing the staged link is allowed: the directory is the instance's own
        open(p, "w").write("new file")
    """))
    script_processor(sess).run(code=str(code), logs=False,
                               inputs=[ProcessingInput(source=f"s3://{bucket}/imm",
                                                       destination="/opt/ml/processing/input/d")],
                               outputs=[ProcessingOutput(source="/opt/ml/processing/output/o",
                                                         destination=f"s3://{bucket}/imm-out")])
    assert sess.store.get_bytes(bucket, "imm/data.txt") == b"original"
    inode, links = sess.store.get_bytes(bucket, "imm-out/inode.txt").decode().split()
    assert int(inode) == os.stat(sess.store.local_path(bucket, "imm/data.txt")).st_ino  # zero-copy: a hard link
    assert int(links) >= 2


def test_environment_and_arguments_reach_the_script(sess, tmp_path):
    code = write(tmp_path / "env.py", textwrap.dedent("""
        import os, sys, json
        os.makedirs("/opt/ml/processing/output/e", exist_ok=True)
        json.dump({"argv": sys.argv[1:], "color": os.environ.get("COLOR")},
                  open("/opt/ml/processing/output/e/env.json", "w"))
    """))
    out = f"s3://{sess.default_bucket()}/env"
    script_processor(sess, env={"COLOR": "teal"}).run(
        code=str(code), logs=False, arguments=["--alpha", "1"],
        outputs=[ProcessingOutput(source="/opt/ml/processing/output/e", destination=out)])
    got = json.loads(S3Downloader.read_file(f"{out}/env.json", sagemaker_session=sess))
    assert got == {"argv": ["--alpha", "1"], "color": "teal"}


def test_logs_are_shown_prefixed_by_host(sess, tmp_path, capsys):
    code = write(tmp_path / "hello.py", "print('hello from the script')\n")
    script_processor(sess, 2).run(code=str(code), logs=True)
    err = capsys.readouterr().err
    assert "[algo-1] hello from the script" in err
    assert "[algo-2] hello from the script" in err


def test_a_job_against_an_s3_endpoint_shards_over_the_wire(s3_home, tmp_path):
    sess = sluice.Session()
    assert sess.store.kind == "s3"
    raw = upload_objects(sess, tmp_path, 6)
    code = write(tmp_path / "report.py", REPORT_SCRIPT)
    out = f"s3://{sess.default_bucket()}/s3-reports"
    script_processor(sess, 2).run(
        code=str(code), logs=False,
        inputs=[ProcessingInput(source=raw, destination="/opt/ml/processing/input/data/",
                                s3_data_distribution_type="ShardedByS3Key")],
        outputs=[ProcessingOutput(source="/opt/ml/processing/output/report", destination=out)])
    got = reports(sess, out)
    assert got["algo-1"]["files"] == ["part-000.csv", "part-002.csv", "part-004.csv"]
    assert got["algo-2"]["files"] == ["part-001.csv", "part-003.csv", "part-005.csv"]
