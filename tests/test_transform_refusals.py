"""Bad transform settings are refused before any work starts, every problem in one message, and leave
nothing behind: no job record, no job directory, no output object."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

import sluice
from sluice.errors import ResourceLimitExceeded, SpecError
from sluice.jobs.transform import TransformJobSpec
from sluice.transformer import Transformer

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def model_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def sess(sluice_home: Path) -> sluice.Session:
    s = sluice.Session()
    bucket = s.default_bucket()
    s.store.put(bucket, "in/a.csv", b"1,2\n")
    s.store.put(bucket, "models/m/model.tar.gz", model_tar({"README": b"no model"}))
    s.metadata.create_resource("Model", "m", {"ModelName": "m", "PrimaryContainer": {
        "Image": SKLEARN_IMAGE, "ModelDataUrl": f"s3://{bucket}/models/m/model.tar.gz", "Environment": {}}})
    return s


def assert_nothing_left(sess: sluice.Session) -> None:
    assert sess.metadata.list_jobs() == []
    jobs_root = sess.config.jobs_root
    assert not jobs_root.exists() or list(jobs_root.iterdir()) == []
    assert [o.key for o in sess.store.list(sess.default_bucket(), "out")] == []


def transform(sess: sluice.Session, transformer_kw: dict | None = None, **kw) -> None:
    bucket = sess.default_bucket()
    t = Transformer("m", 1, "ml.m5.xlarge", output_path=f"s3://{bucket}/out", sagemaker_session=sess,
                    **(transformer_kw or {}))
    t.transform(f"s3://{bucket}/in", wait=False, **kw)


@pytest.mark.parametrize(
    ("transformer_kw", "kw", "message"),
    [
        ({}, {"input_filter": "$..features"}, "recursive descent '..' is not supported"),
        ({}, {"output_filter": "$[?(@.score > 0.5)]"}, "filter and script expressions"),
        ({}, {"content_type": "text/csv", "input_filter": "$.features"}, "CSV rows are arrays"),
        ({"accept": "application/json", "assemble_with": "Line"},
         {"content_type": "text/csv", "split_type": "Line", "join_source": "Input"},
         "ContentType and TransformOutput.Accept to be equal"),
        ({"accept": "text/csv"}, {"content_type": "text/csv", "split_type": "Line", "join_source": "Input"},
         "SplitType and TransformOutput.AssembleWith to be equal"),
        ({"max_payload": 101}, {}, "MaxPayloadInMB=101 is over the limit of 100 MB"),
        ({"max_concurrent_transforms": 17}, {}, r"MaxConcurrentTransforms \* MaxPayloadInMB = 17 \* 6 \(the default\)"),
        ({"max_concurrent_transforms": 5, "max_payload": 30}, {"split_type": "Line"}, "= 150 MB"),
        ({"strategy": "MultiRecord"}, {}, "BatchStrategy=MultiRecord needs a SplitType"),
        ({}, {"split_type": "Words"}, "SplitType"),
        ({}, {"data_type": "AugmentedManifestFile"}, "S3DataType 'AugmentedManifestFile' is not available here"),
    ],
)
def test_bad_settings_are_refused_before_start(sess, transformer_kw, kw, message):
    with pytest.raises(SpecError, match=message):
        transform(sess, transformer_kw, **kw)
    assert_nothing_left(sess)


def test_every_problem_is_reported_in_one_message(sess):
    with pytest.raises(SpecError) as err:
        transform(sess, {"max_payload": 200, "strategy": "SingleRecord"}, input_filter="$..x")
    text = str(err.value)
    assert "over the limit of 100 MB" in text and "needs a SplitType" in text and "recursive descent" in text


def test_a_missing_model_is_named(sess):
    t = Transformer("no-such-model", 1, "ml.m5.xlarge", sagemaker_session=sess)
    with pytest.raises(SpecError, match="ModelName 'no-such-model': there is no model with that name"):
        t.transform(f"s3://{sess.default_bucket()}/in", wait=False)
    assert_nothing_left(sess)


def test_a_model_whose_archive_is_gone_is_refused(sess):
    sess.store.delete(sess.default_bucket(), "models/m/model.tar.gz")
    with pytest.raises(SpecError, match=r"ModelDataUrl .* does not exist"):
        transform(sess)
    assert_nothing_left(sess)


def test_a_missing_input_prefix_is_refused(sess):
    t = Transformer("m", 1, "ml.m5.xlarge", output_path=f"s3://{sess.default_bucket()}/out", sagemaker_session=sess)
    with pytest.raises(SpecError, match="no objects found under"):
        t.transform(f"s3://{sess.default_bucket()}/nothing-here", wait=False)
    assert_nothing_left(sess)


def test_data_must_be_an_s3_uri(sess):
    with pytest.raises(SpecError, match="Invalid S3 URI"):
        Transformer("m", 1, "ml.m5.xlarge", sagemaker_session=sess).transform("/tmp/data", wait=False)


def test_an_output_bucket_that_does_not_exist_is_refused(sess):
    t = Transformer("m", 1, "ml.m5.xlarge", output_path="s3://no-such-bucket/out", sagemaker_session=sess)
    with pytest.raises(SpecError, match="bucket 'no-such-bucket', which does not exist"):
        t.transform(f"s3://{sess.default_bucket()}/in", wait=False)
    assert_nothing_left(sess)


def test_instance_quota_applies_to_transform_jobs(sess):
    with pytest.raises(ResourceLimitExceeded, match="for transform job usage"):
        Transformer("m", 25, "ml.m5.xlarge", sagemaker_session=sess).transform(
            f"s3://{sess.default_bucket()}/in", wait=False)
    assert_nothing_left(sess)


def test_the_model_server_sees_the_batch_variables_only_when_set(sess):
    request = {
        "TransformJobName": "j", "ModelName": "m",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                           "S3Uri": f"s3://{sess.default_bucket()}/in"}},
                           "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": f"s3://{sess.default_bucket()}/out"},
        "TransformResources": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge"},
        "Environment": {"MY_VAR": "1"},
    }
    plain = TransformJobSpec.from_request(request, sess.config)
    assert plain.container_env() == {"MY_VAR": "1", "SAGEMAKER_BATCH": "true"}
    full = TransformJobSpec.from_request(
        {**request, "BatchStrategy": "SingleRecord", "MaxPayloadInMB": 2, "MaxConcurrentTransforms": 3},
        sess.config)
    assert full.container_env() == {
        "MY_VAR": "1", "SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "2",
        "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD", "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "3",
    }
