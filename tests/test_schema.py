"""Requests are checked against botocore's SageMaker service model, and every problem is reported at once."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from sluice.errors import SpecError
from sluice.jobs.schema import describe_shape_names, validate_request

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def processing_request() -> dict[str, Any]:
    """A CreateProcessingJob request shaped like the one SKLearnProcessor.run() sends."""
    return {
        "ProcessingJobName": "sklearn-preprocess-2024-05-01-12-00-00-000",
        "ProcessingInputs": [
            {
                "InputName": "input-1",
                "AppManaged": False,
                "S3Input": {
                    "S3Uri": "s3://my-bucket/raw/",
                    "LocalPath": "/opt/ml/processing/input",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "ShardedByS3Key",
                    "S3CompressionType": "None",
                },
            },
            {
                "InputName": "code",
                "AppManaged": False,
                "S3Input": {
                    "S3Uri": "s3://my-bucket/job/input/code/preprocess.py",
                    "LocalPath": "/opt/ml/processing/input/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                    "S3CompressionType": "None",
                },
            },
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "train",
                    "AppManaged": False,
                    "S3Output": {
                        "S3Uri": "s3://my-bucket/job/output/train",
                        "LocalPath": "/opt/ml/processing/train",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 2, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "AppSpecification": {
            "ImageUri": SKLEARN_IMAGE,
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/preprocess.py"],
            "ContainerArguments": ["--train-test-split-ratio", "0.2"],
        },
        "Environment": {"LOG_LEVEL": "info"},
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "Tags": [{"Key": "project", "Value": "demo"}],
    }


def refusal(request: dict[str, Any], operation: str = "CreateProcessingJob") -> str:
    with pytest.raises(SpecError) as info:
        validate_request(operation, request)
    return str(info.value)


def test_valid_processing_request_passes() -> None:
    validate_request("CreateProcessingJob", processing_request())


def test_local_instance_type_is_accepted_like_sagemaker_local_mode() -> None:
    req = processing_request()
    req["ProcessingResources"]["ClusterConfig"]["InstanceType"] = "local"
    validate_request("CreateProcessingJob", req)


def test_bad_job_name_is_refused_naming_field_value_and_pattern() -> None:
    req = processing_request()
    req["ProcessingJobName"] = "my_job!"
    msg = refusal(req)
    assert "ProcessingJobName" in msg
    assert '"my_job!"' in msg
    assert "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}" in msg


def test_too_long_job_name_reports_length_limit() -> None:
    req = processing_request()
    req["ProcessingJobName"] = "a" * 64
    assert "length less than or equal to 63" in refusal(req)


def test_fastfile_input_mode_is_refused_listing_pipe_and_file() -> None:
    req = processing_request()
    req["ProcessingInputs"][0]["S3Input"]["S3InputMode"] = "FastFile"
    msg = refusal(req)
    assert "ProcessingInputs[0].S3Input.S3InputMode" in msg
    assert '"FastFile"' in msg
    assert "[Pipe, File]" in msg


def test_missing_app_specification_is_refused() -> None:
    req = processing_request()
    del req["AppSpecification"]
    msg = refusal(req)
    assert "AppSpecification: required member" in msg


def test_missing_nested_required_member_names_its_path() -> None:
    req = processing_request()
    del req["ProcessingResources"]["ClusterConfig"]["VolumeSizeInGB"]
    assert "ProcessingResources.ClusterConfig.VolumeSizeInGB: required member" in refusal(req)


def test_misspelt_member_is_refused_with_suggestion_and_allowed_keys() -> None:
    req = processing_request()
    req["ProcesingInputs"] = req.pop("ProcessingInputs")
    msg = refusal(req)
    assert "ProcesingInputs: unknown member" in msg
    assert "Did you mean 'ProcessingInputs'?" in msg
    assert "Allowed members: AppSpecification, Environment, ExperimentConfig" in msg


def test_instance_count_zero_is_refused_with_minimum() -> None:
    req = processing_request()
    req["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = 0
    msg = refusal(req)
    assert "ProcessingResources.ClusterConfig.InstanceCount: value 0" in msg
    assert "greater than or equal to 1" in msg


def test_instance_count_above_api_maximum_is_refused() -> None:
    req = processing_request()
    req["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = 101
    assert "less than or equal to 100" in refusal(req)


def test_wrong_types_are_refused_with_expected_type() -> None:
    req = processing_request()
    req["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = "2"
    req["ProcessingInputs"][0]["AppManaged"] = "false"
    req["AppSpecification"]["ContainerEntrypoint"] = "python3 preprocess.py"
    req["ProcessingOutputConfig"] = ["not", "a", "dict"]
    msg = refusal(req)
    assert 'InstanceCount: got "2" (a str), expected an integer' in msg
    assert "ProcessingInputs[0].AppManaged: got \"false\" (a str), expected a boolean" in msg
    assert "AppSpecification.ContainerEntrypoint: got" in msg and "expected a list" in msg
    assert "ProcessingOutputConfig: got" in msg and "expected a structure" in msg


def test_boolean_is_not_an_integer() -> None:
    req = processing_request()
    req["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = True
    assert "expected an integer" in refusal(req)


def test_null_is_refused_with_advice_to_omit_the_key() -> None:
    req = processing_request()
    req["AppSpecification"]["ContainerArguments"] = None
    assert "AppSpecification.ContainerArguments: got null" in refusal(req)


def test_map_keys_and_sizes_are_checked() -> None:
    req = processing_request()
    req["Environment"] = {"1-BAD": "x"} | {f"V{i}": "x" for i in range(100)}
    msg = refusal(req)
    assert 'Environment["1-BAD"] (key)' in msg
    assert "Member must have length less than or equal to 100" in msg


def test_list_length_limits_are_checked() -> None:
    req = processing_request()
    req["ProcessingOutputConfig"]["Outputs"] = []
    # Outputs has no minimum in the model, so an empty list passes; too many inputs does not.
    validate_request("CreateProcessingJob", req)
    req["ProcessingInputs"] = req["ProcessingInputs"][:1] * 11
    assert "ProcessingInputs: value" in refusal(req)


def test_unknown_instance_type_lists_close_matches() -> None:
    req = processing_request()
    req["ProcessingResources"]["ClusterConfig"]["InstanceType"] = "ml.m5.xlarg"
    msg = refusal(req)
    assert "ProcessingResources.ClusterConfig.InstanceType" in msg
    assert "ml.m5.xlarge" in msg


def test_several_problems_are_reported_together() -> None:
    req = processing_request()
    req["ProcessingJobName"] = "my_job!"
    req["ProcessingInputs"][0]["S3Input"]["S3InputMode"] = "FastFile"
    del req["AppSpecification"]
    req["ProcesingOutputConfig"] = req.pop("ProcessingOutputConfig")
    req["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = 0
    msg = refusal(req)
    assert "(5 problems)" in msg
    for path in (
        "ProcessingJobName",
        "ProcessingInputs[0].S3Input.S3InputMode",
        "AppSpecification",
        "ProcesingOutputConfig",
        "ProcessingResources.ClusterConfig.InstanceCount",
    ):
        assert f"  - {path}" in msg


def test_training_request_is_validated_with_the_same_walker() -> None:
    req = {
        "TrainingJobName": "xgb-train-1",
        "AlgorithmSpecification": {
            "TrainingImage": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
            "TrainingInputMode": "File",
        },
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://my-bucket/train/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "text/csv",
            }
        ],
        "HyperParameters": {"max_depth": "5", "num_round": "10"},
        "OutputDataConfig": {"S3OutputPath": "s3://my-bucket/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
    validate_request("CreateTrainingJob", req)
    bad = copy.deepcopy(req)
    bad["AlgorithmSpecification"]["TrainingInputMode"] = "Stream"
    bad["InputDataConfig"][0]["ChannelName"] = "train data"
    msg = refusal(bad, "CreateTrainingJob")
    assert "AlgorithmSpecification.TrainingInputMode" in msg and "[Pipe, File, FastFile]" in msg
    assert "InputDataConfig[0].ChannelName" in msg


def test_timestamps_accept_datetime_and_iso_strings() -> None:
    # The Create*Job requests carry no timestamp member; ListProcessingJobs' CreationTimeAfter is one.
    validate_request("ListProcessingJobs", {"CreationTimeAfter": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)})
    validate_request("ListProcessingJobs", {"CreationTimeAfter": "2024-01-01T00:00:00Z"})
    with pytest.raises(SpecError, match="CreationTimeAfter: got"):
        validate_request("ListProcessingJobs", {"CreationTimeAfter": "yesterday"})


def test_unknown_operation_is_refused_with_close_matches() -> None:
    with pytest.raises(SpecError, match="Did you mean CreateProcessingJob"):
        validate_request("CreateProcesingJob", {})


def test_describe_shape_names_lists_the_request_tree() -> None:
    names = describe_shape_names("CreateProcessingJob")
    assert "CreateProcessingJobRequest" in names
    assert "ProcessingS3Input" in names
    assert "ProcessingS3InputMode" in names
