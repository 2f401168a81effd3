"""The issue's serving example end to end: a trained model deployed from Model and from the estimator."""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

import sluice
from sluice.deserializers import JSONDeserializer
from sluice.model import Model
from sluice.serializers import CSVSerializer
from sluice.sklearn import SKLearn

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"

INFERENCE = textwrap.dedent(
    """
    import json, os
    import joblib
    import numpy as np

    def model_fn(model_dir):
        return joblib.load(os.path.join(model_dir, "model.joblib"))

    def input_fn(body, content_type):
        assert content_type == "text/csv", content_type
        return np.array([[float(v) for v in body.strip().split(",")]])

    def predict_fn(data, model):
        return model.predict(data)

    def output_fn(prediction, accept):
        return json.dumps({"rings": float(prediction[0])})
    """
)


@pytest.fixture
def sess(sluice_home: Path) -> sluice.Session:
    return sluice.Session()


def fitted_model_tarball(sess: sluice.Session, tmp_path: Path) -> str:
    x = np.array([[0.1, 0.2, 0.3], [0.4, 0.3, 0.1], [0.5, 0.4, 0.2], [0.2, 0.1, 0.05]])
    model = LinearRegression().fit(x, x @ np.array([10.0, 5.0, 1.0]))
    joblib.dump(model, tmp_path / "model.joblib")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(tmp_path / "model.joblib", arcname="model.joblib")
    sess.store.put(sess.default_bucket(), "abalone/model.tar.gz", buf.getvalue())
    return f"s3://{sess.default_bucket()}/abalone/model.tar.gz"


def test_model_deploy_predict_and_delete(sess, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "inference.py").write_text(INFERENCE)
    model = Model(image_uri=SKLEARN_IMAGE, model_data=fitted_model_tarball(sess, tmp_path), entry_point="inference.py",
                  source_dir=str(code), role=sluice.get_execution_role(), sagemaker_session=sess)
    model.create(instance_type="ml.m5.large")
    assert sess.describe_model(model.name)["ModelName"] == model.name
    predictor = model.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    try:
        body = predictor.predict("0.45,0.36,0.11", initial_args={"ContentType": "text/csv"})
        expected = 0.45 * 10 + 0.36 * 5 + 0.11
        assert json.loads(body)["rings"] == pytest.approx(expected)
        predictor.serializer, predictor.deserializer = CSVSerializer(), JSONDeserializer()
        assert predictor.predict([0.45, 0.36, 0.11])["rings"] == pytest.approx(expected)
    finally:
        predictor.delete_endpoint()
    assert [e for e in sess.metadata.list_resources("Endpoint")] == []


def test_estimator_deploy_serves_the_trained_model(sess, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    # One script trains and serves, as the SageMaker docs write it: training under the __main__ guard, the
    # handlers at module level for the model server to import.
    (src / "train.py").write_text(INFERENCE + textwrap.dedent("""
        if __name__ == "__main__":
            from sklearn.linear_model import LinearRegression
            d = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv"), delimiter=",")
            model = LinearRegression().fit(d[:, 1:], d[:, 0])
            joblib.dump(model, os.path.join(os.environ["SM_MODEL_DIR"], "model.joblib"))
    """))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("\n".join(f"{2 * x + 1},{x},{x},{x}" for x in range(20)) + "\n")
    data = sess.upload_data(str(tmp_path / "data"), bucket=sess.default_bucket(), key_prefix="deploy-train")
    est = SKLearn(entry_point="train.py", source_dir=str(src), framework_version="1.2-1",
                  role=sluice.get_execution_role(), instance_count=1, instance_type="ml.m5.large",
                  sagemaker_session=sess)
    est.fit({"train": data}, logs=False)
    predictor = est.deploy(initial_instance_count=2, instance_type="ml.m5.large",
                           serializer=CSVSerializer(), deserializer=JSONDeserializer())
    try:
        assert predictor.predict([3.0, 3.0, 3.0])["rings"] == pytest.approx(7.0, abs=1e-6)
    finally:
        predictor.delete_endpoint()


def test_model_transformer_runs_the_issues_batch_example(sess, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "inference.py").write_text(textwrap.dedent("""
        import os, joblib, numpy as np

        def model_fn(model_dir):
            return joblib.load(os.path.join(model_dir, "model.joblib"))

        def input_fn(body, content_type):
            return np.array([[float(v) for v in line.split(",")] for line in body.strip().splitlines()])

        def predict_fn(data, model):
            return model.predict(data)

        def output_fn(prediction, accept):
            return "".join(f"{p:.4f}\\n" for p in prediction)
    """))
    model = Model(image_uri=SKLEARN_IMAGE, model_data=fitted_model_tarball(sess, tmp_path), entry_point="inference.py",
                  source_dir=str(code), role=sluice.get_execution_role(), sagemaker_session=sess)
    bucket = sess.default_bucket()
    rows = ["id-1,0.45,0.36,0.11", "id-2,0.1,0.2,0.3"]
    sess.store.put(bucket, "batch/part-0.csv", ("\n".join(rows) + "\n").encode())
    transformer = model.transformer(instance_count=1, instance_type="ml.m5.large", strategy="MultiRecord",
                                    assemble_with="Line", accept="text/csv", output_path=f"s3://{bucket}/scores")
    transformer.transform(f"s3://{bucket}/batch/", content_type="text/csv", split_type="Line",
                          input_filter="$[1:]", join_source="Input", output_filter="$[0,-1]", logs=False)
    out = sess.store.get_bytes(bucket, "scores/part-0.csv.out").decode().splitlines()
    assert [line.split(",")[0] for line in out] == ["id-1", "id-2"]  # the id joined back, then the score
    assert float(out[0].split(",")[1]) == pytest.approx(0.45 * 10 + 0.36 * 5 + 0.11, abs=1e-3)
    assert transformer.latest_transform_job.describe()["TransformJobStatus"] == "Completed"
