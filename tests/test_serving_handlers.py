"""The inference.py handler contract and the default handlers, exercised in-process (no server)."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sluice.serving.defaults import default_input_fn, default_model_fn, default_output_fn, find_model_file
from sluice.serving.handlers import (
    HandlerError,
    Headers,
    InferenceError,
    InferenceService,
    ModelLoadError,
    UnsupportedFormatError,
)


def model_dir(tmp_path: Path, inference: str | None = None, **files: bytes) -> Path:
    root = tmp_path / "model"
    (root / "code").mkdir(parents=True)
    if inference is not None:
        (root / "code" / "inference.py").write_text(textwrap.dedent(inference))
    for name, data in files.items():
        (root / name).write_bytes(data)
    return root


def loaded(root: Path, **kw) -> InferenceService:
    service = InferenceService(root, **kw)
    service.load()
    return service


def headers(**kw: str) -> Headers:
    names = {"content_type": "Content-Type", "accept": "Accept", "custom": "X-Amzn-SageMaker-Custom-Attributes"}
    return Headers((names[k], v) for k, v in kw.items())


SEEN = """
    import json
    SEEN = {}

    def model_fn(model_dir):
        return "the-model"

    def input_fn(input_data, content_type):
        SEEN["input_type"] = type(input_data).__name__
        SEEN["content_type"] = content_type
        return input_data

    def predict_fn(data, model, context):
        props = context.request_processor[0].get_request_properties()
        SEEN["custom"] = props.get("x-amzn-sagemaker-custom-attributes")
        SEEN["custom_via_headers"] = context.request_processor[0].headers.get("X-Amzn-SageMaker-Custom-Attributes")
        SEEN["custom_via_item"] = context.request_processor[0]["headers"].get("X-AMZN-SAGEMAKER-CUSTOM-ATTRIBUTES")
        SEEN["system"] = dict(context.system_properties)
        return [model, data if isinstance(data, str) else data.decode()]

    def output_fn(prediction, accept):
        SEEN["accept"] = accept
        return json.dumps({"prediction": prediction, "seen": SEEN})
"""


def test_handlers_get_context_by_arity_and_utf8_bodies_as_str(tmp_path):
    root = model_dir(tmp_path, SEEN)
    service = loaded(root)
    out = service.invoke(b"1,2", headers(content_type="text/csv", accept="application/json", custom="trace=7"))
    seen = json.loads(out.body)["seen"]
    assert json.loads(out.body)["prediction"] == ["the-model", "1,2"]
    assert seen["input_type"] == "str" and seen["content_type"] == "text/csv"
    assert seen["custom"] == seen["custom_via_headers"] == seen["custom_via_item"] == "trace=7"
    assert seen["system"]["model_dir"] == str(root) and seen["system"]["gpu_id"] is None
    assert out.content_type == "application/json" and out.status == 200
    # a non-UTF-8 content type reaches input_fn as bytes; JSON and charset=utf-8 as str
    for content_type, kind in (("application/octet-stream", "bytes"), ("application/json", "str"),
                               ("text/plain; charset=utf-8", "str")):
        assert json.loads(service.invoke(b"[1]", headers(content_type=content_type)).body)["seen"]["input_type"] == kind


def test_missing_or_any_accept_becomes_the_default_accept(tmp_path):
    root = model_dir(tmp_path, SEEN)
    service = loaded(root, default_accept="text/csv")
    for accept in (None, "*/*"):
        h = headers(content_type="text/csv") if accept is None else headers(content_type="text/csv", accept=accept)
        out = service.invoke(b"1", h)
        assert json.loads(out.body)["seen"]["accept"] == "text/csv"
        assert out.content_type == "text/csv"
    out = service.invoke(b"1", headers(content_type="text/csv", accept="application/x-npy"))
    assert json.loads(out.body)["seen"]["accept"] == "application/x-npy"


def test_transform_fn_alone_may_return_body_and_content_type(tmp_path):
    root = model_dir(tmp_path, """
        def model_fn(model_dir):
            return 10

        def transform_fn(model, input_data, content_type, accept, context):
            return f"{model}|{input_data}|{content_type}|{accept}|{context.custom_attributes}", "text/plain"
    """)
    out = loaded(root).invoke(b'{"a": 1}', headers(content_type="application/json", accept="*/*", custom="x=1"))
    assert out.body == b'10|{"a": 1}|application/json|application/json|x=1'
    assert out.content_type == "text/plain"


def test_transform_fn_mixed_with_predict_fn_or_output_fn_is_refused_naming_them(tmp_path):
    root = model_dir(tmp_path, """
        def transform_fn(model, input_data, content_type, accept):
            return input_data

        def predict_fn(data, model):
            return data

        def output_fn(prediction, accept):
            return prediction
    """)
    service = InferenceService(root)
    with pytest.raises(HandlerError) as err:
        service.load()
    message = str(err.value)
    assert "transform_fn" in message and "predict_fn and output_fn" in message
    assert "define either transform_fn alone" in message
    assert service.error == message and not service.ready and not service.loading


def test_a_handler_with_the_wrong_arity_is_refused_at_load(tmp_path):
    root = model_dir(tmp_path, """
        def predict_fn(data):
            return data
    """)
    with pytest.raises(HandlerError, match=r"predict_fn takes 1 arguments \(data\).*predict_fn\(data, model\)"):
        InferenceService(root).load()


def test_an_explicit_program_that_is_missing_is_refused(tmp_path):
    root = model_dir(tmp_path)
    with pytest.raises(HandlerError, match=r"SAGEMAKER_PROGRAM is 'serve\.py'"):
        InferenceService(root, program="serve.py").load()


def test_an_import_error_in_inference_py_is_a_load_error(tmp_path):
    root = model_dir(tmp_path, "import no_such_module_anywhere\n")
    with pytest.raises(HandlerError, match="ModuleNotFoundError"):
        InferenceService(root).load()


def test_handler_errors_carry_their_status(tmp_path):
    import joblib
    from sklearn.linear_model import LinearRegression

    buf = io.BytesIO()
    joblib.dump(LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0]), buf)
    root = model_dir(tmp_path, None, **{"model.joblib": buf.getvalue()})
    service = loaded(root)
    with pytest.raises(UnsupportedFormatError) as err:
        service.invoke(b"\x89PNG", headers(content_type="image/png"))
    assert err.value.status == 415 and "input_fn" in str(err.value)
    with pytest.raises(InferenceError) as bad:
        service.invoke(b"1,abc", headers(content_type="text/csv"))
    assert bad.value.status == 400 and "row 1, column 2 is 'abc'" in str(bad.value)
    with pytest.raises(UnsupportedFormatError, match="output_fn"):
        service.invoke(b"1", headers(content_type="text/csv", accept="image/png"))


# ---- default model loaders ---------------------------------------------------------------------
def test_default_model_fn_loads_scikit_learn_joblib(tmp_path):
    import joblib
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]], [1.0, 2.0, 5.0])
    buf = io.BytesIO()
    joblib.dump(model, buf)
    root = model_dir(tmp_path, None, **{"model.joblib": buf.getvalue()})
    out = loaded(root).invoke(b"1,1\n2,0", headers(content_type="text/csv", accept="application/json"))
    assert json.loads(out.body) == pytest.approx(model.predict([[1, 1], [2, 0]]).tolist())


def test_default_model_fn_loads_xgboost_boosters_and_pickled_models(tmp_path):
    import pickle

    import xgboost as xgb

    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    y = np.array([1.0, 2.0, 5.0, 6.0])
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(x, label=y), num_boost_round=3)
    expected = booster.predict(xgb.DMatrix(x)).tolist()
    body = b"0,1\n1,0\n2,2\n3,1"
    for name in ("xgboost-model", "model.json", "model.ubj"):
        root = model_dir(tmp_path / name, None)
        booster.save_model(str(root / name))
        assert find_model_file(root, "xgboost") == (root / name, "xgboost")
        out = loaded(root, framework="xgboost").invoke(body, headers(content_type="text/csv"))
        assert json.loads(out.body) == pytest.approx(expected, rel=1e-5)
    regressor = xgb.XGBRegressor(n_estimators=3).fit(x, y)
    pickled = model_dir(tmp_path / "pickled", None, **{"xgboost-model": pickle.dumps(regressor)})
    out = loaded(pickled).invoke(body, headers(content_type="text/csv"))
    assert json.loads(out.body) == pytest.approx(regressor.predict(x).tolist(), rel=1e-5)


def test_a_json_file_that_is_not_an_xgboost_model_is_not_taken_for_one(tmp_path):
    root = model_dir(tmp_path, None, **{"config.json": b'{"hidden_size": 3}'})
    assert find_model_file(root) is None
    with pytest.raises(ModelLoadError) as err:
        default_model_fn(root)
    assert "config.json" in str(err.value) and "model_fn" in str(err.value) and "model.joblib" in str(err.value)


def test_default_model_fn_loads_torchscript_and_refuses_a_state_dict(tmp_path):
    import torch

    class Doubler(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.sum(dim=1, keepdim=True) * 2

    root = model_dir(tmp_path / "ts", None)
    torch.jit.save(torch.jit.trace(Doubler(), torch.ones(1, 3)), str(root / "model.pt"))
    out = loaded(root, framework="pytorch").invoke(b"[[1, 2, 3], [4, 5, 6]]", headers(content_type="application/json"))
    assert json.loads(out.body) == [[12.0], [30.0]]
    sd_root = model_dir(tmp_path / "sd", None)
    torch.save(torch.nn.Linear(3, 1).state_dict(), str(sd_root / "model.pth"))
    service = InferenceService(sd_root, framework="pytorch")
    with pytest.raises(ModelLoadError) as err:
        service.load()
    assert "state_dict" in str(err.value) and "model_fn(model_dir)" in str(err.value)
    assert "state_dict" in (service.error or "")


# ---- default codecs ------------------------------------------------------------------------------
def test_default_input_fn_reads_csv_json_and_npy():
    csv = default_input_fn("1,2,3\n4,,6\n", "text/csv")
    assert csv.shape == (2, 3) and csv.dtype == np.float64 and np.isnan(csv[1, 1])
    column = default_input_fn("1\n2\n3", "text/csv; charset=utf-8")
    assert column.shape == (3, 1)
    assert default_input_fn("[[1, 2], [3, 4]]", "application/json").tolist() == [[1, 2], [3, 4]]
    assert default_input_fn('{"instances": [1]}', "application/json") == {"instances": [1]}
    assert default_input_fn('[[1], [2, 3]]', "application/json") == [[1], [2, 3]]
    buf = io.BytesIO()
    np.save(buf, np.arange(6).reshape(2, 3))
    assert default_input_fn(buf.getvalue(), "application/x-npy").tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(UnsupportedFormatError) as err:
        default_input_fn(b"x", "application/x-parquet")
    assert err.value.status == 415 and "application/x-parquet" in str(err.value)
    with pytest.raises(InferenceError, match="row 2 has 1 columns but row 1 has 2"):
        default_input_fn("1,2\n3", "text/csv")


def test_default_output_fn_negotiates_accept():
    prediction = np.array([1.5, 2.5])
    assert default_output_fn(prediction, "application/json") == (b"[1.5, 2.5]", "application/json")
    assert default_output_fn(prediction, "text/csv, application/json") == (b"1.5\n2.5\n", "text/csv")
    body, kind = default_output_fn(prediction, "image/png, application/x-npy")
    assert kind == "application/x-npy" and np.load(io.BytesIO(body)).tolist() == [1.5, 2.5]
    assert default_output_fn([[1, 2]], "*/*") == (b"[[1, 2]]", "application/json")
    with pytest.raises(UnsupportedFormatError, match="Accept 'image/png'"):
        default_output_fn(prediction, "image/png")
