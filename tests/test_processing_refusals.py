"""Bad input is refused before any work starts, with a message naming the problem and the fix,
and leaves nothing behind: no job record, no job directory, no output object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import sluice
from sluice.errors import InvalidKeyError, ResourceLimitExceeded, SpecError
from sluice.processing import ProcessingInput, ProcessingOutput, ScriptProcessor


@pytest.fixture
def sess(sluice_home: Path) -> sluice.Session:
    s = sluice.Session()
    s.store.put(s.default_bucket(), "data/a.csv", b"1\n")
    return s


@pytest.fixture
def code(tmp_path: Path) -> str:
    path = tmp_path / "noop.py"
    path.write_text("print('should never run')\n")
    return str(path)


def proc(sess, count: int = 1, instance_type: str = "ml.m5.xlarge") -> ScriptProcessor:
    return ScriptProcessor(command=["python3"], image_uri=None, role=sluice.get_execution_role(),
                           instance_count=count, instance_type=instance_type, sagemaker_session=sess)


def assert_nothing_left(sess: sluice.Session) -> None:
    assert sess.metadata.list_jobs() == []
    jobs_root = sess.config.jobs_root
    assert not jobs_root.exists() or list(jobs_root.iterdir()) == []
    assert [o.key for o in sess.store.list(sess.default_bucket(), "out")] == []


def run(sess, p: ScriptProcessor, code: str, source: str, **input_kw) -> None:
    bucket = sess.default_bucket()
    p.run(code=code, logs=False, job_name=input_kw.pop("job_name", None),
          inputs=[ProcessingInput(source=source, destination="/opt/ml/processing/input/d", **input_kw)],
          outputs=[ProcessingOutput(source="/opt/ml/processing/output", destination=f"s3://{bucket}/out")])


def test_bad_job_name_is_refused_naming_the_field_and_rule(sess, code):
    with pytest.raises(SpecError, match=r"ProcessingJobName.*my_job!") as err:
        run(sess, proc(sess), code, f"s3://{sess.default_bucket()}/data", job_name="my_job!")
    assert "pattern" in str(err.value)
    assert_nothing_left(sess)


def test_missing_prefix_is_refused(sess, code):
    with pytest.raises(SpecError, match=r"no objects found under s3://.*/nothing-here"):
        run(sess, proc(sess), code, f"s3://{sess.default_bucket()}/nothing-here")
    assert_nothing_left(sess)


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"prefix": "s3://b/x/"}', "non-empty JSON array"),
        ('["a.csv"]', "first element must be"),
        ('[{"prefix": "s3://sagemaker-us-east-1-000000000000/data/"}]', "lists no objects"),
        ('[{"prefix": "s3://sagemaker-us-east-1-000000000000/data/"}, "../../etc/passwd"]', "leave its bucket"),
        ('[{"prefix": "s3://sagemaker-us-east-1-000000000000/data/"}, "missing.csv"]', "does not exist"),
    ],
)
def test_malformed_manifest_is_refused(sess, code, manifest, message):
    bucket = sess.default_bucket()
    sess.store.put(bucket, "manifests/m.json", manifest.encode())
    with pytest.raises(SpecError, match=message):
        run(sess, proc(sess), code, f"s3://{bucket}/manifests/m.json", s3_data_type="ManifestFile")
    assert_nothing_left(sess)


def test_traversal_key_is_refused(sess, code):
    with pytest.raises(SpecError, match=r"'data/\.\./\.\./secrets' has a '\.\.' segment, which would leave its bucket"):
        run(sess, proc(sess), code, f"s3://{sess.default_bucket()}/data/../../secrets")
    assert_nothing_left(sess)


@pytest.mark.parametrize("key", ["/abs/key", "a\x00b", "a/./b"])
def test_keys_that_escape_their_bucket_are_refused_by_the_store(sess, key):
    with pytest.raises(InvalidKeyError):
        sess.store.put(sess.default_bucket(), key, b"x")


def test_gzip_with_file_mode_is_refused(sess, code):
    with pytest.raises(SpecError, match="only be gzipped when the input mode is Pipe"):
        ProcessingInput(source="s3://b/x", destination="/opt/ml/processing/input/d", s3_compression_type="Gzip")
    # The same rule holds for a raw request, as a pipeline definition would send it.
    request = {
        "ProcessingJobName": "gzip-file",
        "RoleArn": sluice.get_execution_role(),
        "AppSpecification": {"ImageUri": "", "ContainerEntrypoint": ["python3", "-c", "pass"]},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                  "VolumeSizeInGB": 30}},
        "ProcessingInputs": [{"InputName": "d", "S3Input": {
            "S3Uri": f"s3://{sess.default_bucket()}/data", "LocalPath": "/opt/ml/processing/input/d",
            "S3DataType": "S3Prefix", "S3InputMode": "File", "S3CompressionType": "Gzip"}}],
    }
    from sluice.runtime.processing import start_processing_job

    with pytest.raises(SpecError, match="S3InputMode='Pipe'"):
        start_processing_job(request, sess.config)
    assert_nothing_left(sess)


def test_more_instances_than_the_quota_is_refused_with_how_to_raise_it(sess, code):
    with pytest.raises(ResourceLimitExceeded) as err:
        run(sess, proc(sess, count=25), code, f"s3://{sess.default_bucket()}/data")
    msg = str(err.value)
    assert "ml.m5.xlarge for processing job usage" in msg and "is 20 Instances" in msg
    assert "request delta of 25 Instances" in msg and "[quotas]" in msg
    assert_nothing_left(sess)


def test_raising_the_quota_in_config_lets_the_job_run(sess, code):
    sess.config.home.joinpath("config.toml").write_text('[quotas]\n"ml.m5.xlarge" = 25\n')
    sluice.config.reset_config()
    s2 = sluice.Session()
    run(s2, proc(s2, count=21), code, f"s3://{s2.default_bucket()}/data")
    assert s2.metadata.list_jobs()[0].status == "Completed"


def test_unknown_instance_type_is_refused_with_close_matches(sess, code):
    with pytest.raises(SpecError, match=r"ml\.m5\.xlarge"):
        run(sess, proc(sess, instance_type="ml.m5.xlarj"), code, f"s3://{sess.default_bucket()}/data")
    assert_nothing_left(sess)


def test_local_path_outside_opt_ml_processing_is_refused(sess, code):
    p = proc(sess)
    with pytest.raises(SpecError, match="must be an absolute path under /opt/ml/processing/"):
        p.run(code=code, logs=False, inputs=[ProcessingInput(source=f"s3://{sess.default_bucket()}/data",
                                                             destination="/tmp/data")])
    assert_nothing_left(sess)


def test_overlapping_channel_directories_are_refused(sess, code):
    p = proc(sess)
    with pytest.raises(SpecError, match="overlap"):
        p.run(code=code, logs=False,
              inputs=[ProcessingInput(source=f"s3://{sess.default_bucket()}/data", destination="/opt/ml/processing/a")],
              outputs=[ProcessingOutput(source="/opt/ml/processing/a/out")])
    assert_nothing_left(sess)


def test_code_inside_a_data_input_is_staged_as_the_sdk_lays_it_out(sess, tmp_path):
    """SageMaker's Abalone example mounts data at /opt/ml/processing/input while the SDK puts the code at
    /opt/ml/processing/input/code: an input inside another input is allowed; both are staged."""
    bucket = sess.default_bucket()
    sess.upload_string_as_file_body("1,2,3\n", bucket, "raw/abalone.csv")
    script = tmp_path / "check.py"
    script.write_text("import os\n"
                      "names = sorted(os.listdir('/opt/ml/processing/input'))\n"
                      "assert names == ['abalone.csv', 'code'], names\n"
                      "assert open('/opt/ml/processing/input/abalone.csv').read() == '1,2,3\\n'\n")
    p = proc(sess)
    p.run(code=str(script), logs=False,
          inputs=[ProcessingInput(source=f"s3://{bucket}/raw", destination="/opt/ml/processing/input")])
    assert p.jobs[-1].describe()["ProcessingJobStatus"] == "Completed"
    with pytest.raises(SpecError, match="overlap"):
        p.run(code=str(script), logs=False, inputs=[ProcessingInput(
            source=f"s3://{bucket}/raw", destination="/opt/ml/processing/input/code")])  # same directory


def test_unknown_image_is_refused_with_how_to_map_it(sess, code):
    p = ScriptProcessor(command=["python3"], image_uri="registry.example.com/team/custom:1.0",
                        role=sluice.get_execution_role(), instance_count=1, instance_type="ml.m5.xlarge",
                        sagemaker_session=sess)
    with pytest.raises(SpecError, match=r"\[images\]"):
        p.run(code=code, logs=False)
    assert_nothing_left(sess)


def test_every_problem_of_a_request_is_reported_at_once(sess):
    from sluice.runtime.processing import start_processing_job

    request = {
        "ProcessingJobName": "bad name",
        "RoleArn": sluice.get_execution_role(),
        "AppSpecification": {"ImageUri": ""},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 0, "InstanceType": "ml.m5.xlarge",
                                                  "VolumeSizeInGB": 30}},
        "ProcesingInputs": [],
    }
    with pytest.raises(SpecError) as err:
        start_processing_job(request, sess.config)
    msg = str(err.value)
    for part in ("ProcessingJobName", "InstanceCount", "ProcesingInputs"):
        assert part in msg
    assert json.dumps(request)  # the request itself is untouched data
    assert_nothing_left(sess)


def test_two_keys_that_would_land_on_one_path_are_refused(sess, code):
    bucket = sess.default_bucket()
    sess.store.put(bucket, "data/part-1.csv", b"a")
    sess.store.put(bucket, "data/part/part-1.csv", b"b")
    with pytest.raises(SpecError, match=r"would both land at 'part-1\.csv'"):
        run(sess, proc(sess), code, f"s3://{bucket}/data/part")
    assert_nothing_left(sess)
