"""Models and the model registry through the public API, the boto3-shaped client and the CLI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import sluice
from sluice.errors import SpecError
from sluice.model import Model, ModelPackage
from sluice.model_metrics import MetricsSource, ModelMetrics
from sluice.s3 import S3Downloader
from sluice.sklearn import SKLearn, SKLearnModel

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


@pytest.fixture
def sess(sluice_home: Path) -> sluice.Session:
    return sluice.Session()


@pytest.fixture
def model_data(sess: sluice.Session) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"weights"
        info = tarfile.TarInfo("model.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    bucket = sess.default_bucket()
    sess.store.put(bucket, "trained/model.tar.gz", buf.getvalue())
    return f"s3://{bucket}/trained/model.tar.gz"


@pytest.fixture
def code(tmp_path: Path) -> Path:
    src = tmp_path / "code"
    src.mkdir()
    (src / "inference.py").write_text("def model_fn(model_dir):\n    return 'm'\n")
    (src / "helpers.py").write_text("X = 1\n")
    return src


def tar_names(sess: sluice.Session, uri: str) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(S3Downloader.read_bytes(uri, sagemaker_session=sess))) as tar:
        return sorted(tar.getnames())


def test_create_records_the_model_with_its_code_repacked(sess, model_data, code):
    model = Model(image_uri=SKLEARN_IMAGE, model_data=model_data, entry_point="inference.py", source_dir=str(code),
                  role=sluice.get_execution_role(), env={"LOG": "1"}, sagemaker_session=sess)
    model.create(instance_type="ml.m5.large")
    desc = sess.describe_model(model.name)
    container = desc["PrimaryContainer"]
    assert container["Image"] == SKLEARN_IMAGE
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert container["Environment"]["LOG"] == "1"
    assert container["ModelDataUrl"] == f"s3://{sess.default_bucket()}/{model.name}/model.tar.gz"
    assert tar_names(sess, container["ModelDataUrl"]) == ["code/helpers.py", "code/inference.py", "model.bin"]
    assert desc["ModelArn"].endswith(f":model/{model.name.lower()}")
    model.delete_model()
    with pytest.raises(SpecError, match="Could not find model"):
        sess.describe_model(model.name)


def test_a_model_name_is_unique(sess, model_data):
    Model(image_uri=SKLEARN_IMAGE, model_data=model_data, name="abalone", sagemaker_session=sess).create()
    with pytest.raises(SpecError, match="ResourceInUse"):
        Model(image_uri=SKLEARN_IMAGE, model_data=model_data, name="abalone", sagemaker_session=sess).create()


def test_an_estimator_creates_its_framework_model(sess, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text("import os\nopen(os.environ['SM_MODEL_DIR'] + '/m.txt', 'w').write('m')\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text("1\n")
    data = sess.upload_data(str(tmp_path / "data"), bucket=sess.default_bucket(), key_prefix="est-data")
    est = SKLearn(entry_point="train.py", source_dir=str(src), framework_version="1.2-1",
                  role=sluice.get_execution_role(), instance_count=1, instance_type="ml.m5.large",
                  sagemaker_session=sess)
    est.fit({"train": data}, logs=False)
    model = est.create_model()
    assert isinstance(model, SKLearnModel)
    assert model.model_data == est.model_data and model.entry_point == "train.py"
    model.create()
    assert "code/train.py" in tar_names(sess, sess.describe_model(model.name)["PrimaryContainer"]["ModelDataUrl"])


def test_register_versions_approval_and_metrics(sess, model_data):
    model = Model(image_uri=SKLEARN_IMAGE, model_data=model_data, sagemaker_session=sess)
    metrics = ModelMetrics(model_statistics=MetricsSource("application/json", "s3://b/eval/evaluation.json"))
    first = model.register(model_package_group_name="abalone", content_types=["text/csv"],
                           response_types=["text/csv"], inference_instances=["ml.m5.large"],
                           transform_instances=["ml.m5.large"], model_metrics=metrics,
                           approval_status="PendingManualApproval", description="first")
    second = model.register(model_package_group_name="abalone", content_types=["text/csv"],
                            response_types=["text/csv"], approval_status="Approved")
    assert first.model_package_arn.endswith(":model-package/abalone/1")
    assert second.model_package_arn.endswith(":model-package/abalone/2")
    desc = sess.describe_model_package("abalone/1")
    assert desc["ModelApprovalStatus"] == "PendingManualApproval"
    assert desc["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == "s3://b/eval/evaluation.json"
    assert desc["InferenceSpecification"]["SupportedContentTypes"] == ["text/csv"]
    assert desc["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == model_data
    # The boto3-shaped calls SageMaker examples make.
    client = sess.sagemaker_client
    listed = client.list_model_packages(ModelPackageGroupName="abalone")["ModelPackageSummaryList"]
    assert [p["ModelPackageVersion"] for p in listed] == [1, 2]
    client.update_model_package(ModelPackageArn=first.model_package_arn, ModelApprovalStatus="Approved",
                                ApprovalDescription="good MSE")
    approved = client.list_model_packages(ModelPackageGroupName="abalone", ModelApprovalStatus="Approved",
                                          SortBy="CreationTime", SortOrder="Descending")
    assert [p["ModelPackageVersion"] for p in approved["ModelPackageSummaryList"]] == [2, 1]
    assert client.describe_model_package(ModelPackageName=first.model_package_arn)["ApprovalDescription"] == "good MSE"
    with pytest.raises(SpecError, match="not one of PendingManualApproval, Approved, Rejected"):
        client.update_model_package(ModelPackageArn=first.model_package_arn, ModelApprovalStatus="Maybe")
    with pytest.raises(AttributeError, match="update_model_package"):
        client.create_pipeline  # noqa: B018 - the error lists what the client answers
    # A registered version is itself a model.
    package = ModelPackage(role=sluice.get_execution_role(), model_package_arn=second.model_package_arn,
                           sagemaker_session=sess)
    assert package.model_data == model_data and package.image_uri == SKLEARN_IMAGE


def test_the_registry_is_readable_and_writable_from_another_process(sess, model_data):
    Model(image_uri=SKLEARN_IMAGE, model_data=model_data, sagemaker_session=sess).register(
        model_package_group_name="churn", content_types=["text/csv"], response_types=["text/csv"])
    env = os.environ.copy()

    def cli(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "sluice.cli", "models", *args], capture_output=True, text=True,
                             env=env)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert json.loads(cli("packages", "churn", "--json"))[0]["ModelApprovalStatus"] == "PendingManualApproval"
    assert "Approved" in cli("approve", "churn/1", "--description", "reviewed")
    assert sess.describe_model_package("churn/1")["ModelApprovalStatus"] == "Approved"
    assert "churn" in cli("groups")
    assert json.loads(cli("describe", "churn/1"))["ModelPackageVersion"] == 1


def test_model_create_refuses_an_unknown_image(sess, model_data):
    with pytest.raises(SpecError, match=r"\[images\]"):
        Model(image_uri="registry.example.com/custom:1", model_data=model_data, sagemaker_session=sess).create()
    assert sess.metadata.list_resources("Model") == []


def test_repack_refuses_a_missing_entry_point(sess, model_data, tmp_path):
    with pytest.raises(SpecError, match=r"entry_point 'nope\.py' was not found"):
        Model(image_uri=SKLEARN_IMAGE, model_data=model_data, entry_point="nope.py", source_dir=str(tmp_path),
              sagemaker_session=sess).create()


def test_inference_code_files_keep_their_content(sess, model_data, code):
    model = Model(image_uri=SKLEARN_IMAGE, model_data=model_data, entry_point="inference.py", source_dir=str(code),
                  sagemaker_session=sess)
    model.create()
    uri = sess.describe_model(model.name)["PrimaryContainer"]["ModelDataUrl"]
    with tarfile.open(fileobj=io.BytesIO(S3Downloader.read_bytes(uri, sagemaker_session=sess))) as tar:
        assert tar.extractfile("code/inference.py").read() == (code / "inference.py").read_bytes()
        assert tar.extractfile("model.bin").read() == b"weights"
