"""The handlers used where ``inference.py`` leaves one out, and the content types they read and write.

Why: the SageMaker framework containers each ship defaults (scikit-learn, XGBoost, PyTorch), so a model
trained by an estimator can be deployed without any serving code. sluice folds them into one set:

``default_model_fn(model_dir)``
    looks for a model file it recognises, trying the image's framework first (``SLUICE_FRAMEWORK``, set
    from the image's environment name), then the others:

    ============ ===============================================================================
    scikit-learn ``model.joblib``, ``model.pkl``, ``model.pickle`` (``joblib.load``; any pickled estimator)
    XGBoost      ``xgboost-model`` (a pickled model or a saved Booster), ``*.ubj`` / ``*.json`` Boosters
    PyTorch      ``model.pt``, ``model.pth`` as TorchScript (``torch.jit.load``); a ``state_dict``
                 is refused with a message asking for ``model_fn``
    ============ ===============================================================================

``default_input_fn(input_data, content_type)``
    ``text/csv`` → a 2-D float array (empty fields are NaN); ``application/json`` → a numpy array when the
    JSON is a numeric (nested) list, else the parsed JSON; ``application/x-npy`` → ``numpy.load``
    (``allow_pickle=False``: a request must not be able to run code); ``text/libsvm`` (or ``text/x-libsvm``,
    which the XGBoost algorithm reads) → a sparse CSR matrix, ``<index>:<value>`` pairs with an optional
    leading label. Anything else: 415.

``default_predict_fn(data, model)``
    a ``torch.nn.Module`` is called on a float32 tensor under ``torch.inference_mode``; an XGBoost
    ``Booster`` predicts on a ``DMatrix`` (the rows must carry exactly the model's features: no label column)
    and, when it was trained with early stopping, with its best iteration, as the XGBoost algorithm serves;
    anything with ``predict`` gets ``model.predict(data)``; any other callable is called.

``default_output_fn(prediction, accept)``
    ``application/json``, ``text/csv`` (``numpy.savetxt``, one row per line) or ``application/x-npy``;
    tensors become arrays first. ``accept`` may list several types (``"text/csv, application/json"``): the
    first one supported wins. Anything else: 415. A ``Booster``'s predictions in ``text/csv`` follow the
    XGBoost algorithm container: one per line in batch transform, but one comma-separated line on an endpoint
    (``SLUICE_ENDPOINT_NAME`` set and ``SAGEMAKER_BATCH`` not), which that container keeps for compatibility.

``algorithm_mode_env(framework, env)``
    what endpoints and batch transform add to the environment of a model with no inference code
    (no ``SAGEMAKER_PROGRAM``) on an image whose container serves its built-in algorithm: the XGBoost
    algorithm's server answers ``text/csv`` when a request names no Accept (or ``*/*``), so such a model gets
    ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=text/csv`` unless the model or the job sets it.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sluice.serving.handlers import ANY, DEFAULT_ACCEPT, InferenceError, ModelLoadError, UnsupportedFormatError

__all__ = [
    "ALGORITHM_DEFAULT_ACCEPT",
    "DECODERS",
    "ENCODERS",
    "algorithm_mode_env",
    "default_input_fn",
    "default_model_fn",
    "default_output_fn",
    "default_predict_fn",
    "find_model_file",
]

CSV = "text/csv"
JSON = "application/json"
NPY = "application/x-npy"
LIBSVM = "text/libsvm"
X_LIBSVM = "text/x-libsvm"

ALGORITHM_DEFAULT_ACCEPT: dict[str, str] = {"xgboost": CSV}
"""Image environment → the Accept its built-in algorithm's model server answers when a request names none.

The XGBoost algorithm container (sagemaker-xgboost-container, ``algorithm_mode/serve.py``) answers text/csv:
``_parse_accept`` falls back to ``os.getenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/csv")``, and without
selectable inference output it writes text/csv whatever the Accept."""


def algorithm_mode_env(framework: str | None, env: Mapping[str, str]) -> dict[str, str]:
    """What to add to ``env`` (the model's environment and the job's) so that a model served in algorithm mode
    (no ``SAGEMAKER_PROGRAM``) answers its container's default Accept; empty when there is nothing to add."""
    accept = ALGORITHM_DEFAULT_ACCEPT.get(framework or "")
    if accept is None or env.get("SAGEMAKER_PROGRAM") or env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"):
        return {}
    return {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": accept}


# ---- decoding requests ----------------------------------------------------------------------------
def _text(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InferenceError(f"the body is not UTF-8 text ({exc}).", 400) from None


def _csv_to_numpy(data: bytes | str) -> Any:
    """Numeric CSV → a 2-D float64 array. A hand-rolled parse: faster than ``genfromtxt`` for the small
    payloads endpoints see, and it names the offending cell."""
    import numpy as np

    rows: list[list[float]] = []
    for r, line in enumerate(_text(data).splitlines()):
        if not line.strip():
            continue
        row = []
        for c, cell in enumerate(line.split(",")):
            cell = cell.strip().strip('"')
            if not cell:
                row.append(math.nan)
                continue
            try:
                row.append(float(cell))
            except ValueError:
                raise InferenceError(
                    f"text/csv row {r + 1}, column {c + 1} is {cell[:40]!r}, not a number: the default input_fn "
                    "reads numeric CSV. Define input_fn(input_data, content_type) in inference.py for other data.",
                    400,
                ) from None
        if rows and len(row) != len(rows[0]):
            raise InferenceError(f"text/csv row {r + 1} has {len(row)} columns but row 1 has {len(rows[0])}; "
                                 "every row must have the same number of columns.", 400)
        rows.append(row)
    if not rows:
        raise InferenceError("the text/csv body is empty; send at least one row.", 400)
    return np.array(rows, dtype=np.float64)


def _json_to_numpy(data: bytes | str) -> Any:
    import numpy as np

    try:
        value = json.loads(data)
    except ValueError as exc:
        raise InferenceError(f"the application/json body is not valid JSON: {exc}.", 400) from None
    if isinstance(value, list):
        try:
            array = np.asarray(value)
        except ValueError:  # ragged
            return value
        if array.dtype.kind in "biuf":
            return array
    return value


def _npy_to_numpy(data: bytes | str) -> Any:
    import numpy as np

    raw = data.encode("latin-1") if isinstance(data, str) else bytes(data)
    try:
        return np.load(io.BytesIO(raw), allow_pickle=False)
    except ValueError as exc:
        raise InferenceError(f"the application/x-npy body is not a .npy array without pickled objects: {exc}.",
                             400) from None


def _libsvm_to_csr(data: bytes | str) -> Any:
    """LIBSVM rows → a float32 CSR matrix. Column indices are kept as written (as XGBoost reads them); a leading
    token without ``:`` is a label and is skipped, so rows with or without labels both work."""
    import numpy as np
    from scipy.sparse import csr_matrix

    indptr, indices, values = [0], [], []
    for r, line in enumerate(_text(data).splitlines()):
        tokens = line.split("#", 1)[0].split()
        if not tokens:
            continue
        if ":" not in tokens[0]:
            tokens = tokens[1:]
        for token in tokens:
            index, sep, value = token.partition(":")
            try:
                if not sep:
                    raise ValueError
                indices.append(int(index))
                values.append(float(value))
            except ValueError:
                raise InferenceError(f"text/libsvm row {r + 1}: {token[:40]!r} is not <index>:<value>; each row is "
                                     "'[label] <index>:<value> ...'.", 400) from None
        indptr.append(len(indices))
    if len(indptr) == 1:
        raise InferenceError("the text/libsvm body is empty; send at least one row.", 400)
    width = max(indices) + 1 if indices else 0
    return csr_matrix((np.array(values, dtype=np.float32), np.array(indices, dtype=np.int64), np.array(indptr)),
                      shape=(len(indptr) - 1, width))


DECODERS: dict[str, Callable[[bytes | str], Any]] = {
    CSV: _csv_to_numpy, JSON: _json_to_numpy, NPY: _npy_to_numpy, LIBSVM: _libsvm_to_csr, X_LIBSVM: _libsvm_to_csr,
}
"""Content type → request decoder of the default ``input_fn``."""


def default_input_fn(input_data: bytes | str, content_type: str | None) -> Any:
    """Decode a request body of a supported content type (parameters such as ``charset`` are ignored)."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    decoder = DECODERS.get(base)
    if decoder is None:
        what = f"Content type {content_type!r}" if content_type else "A request without a Content-Type"
        raise UnsupportedFormatError(
            f"{what} is not supported by the default input_fn, which reads {', '.join(DECODERS)}. "
            "Send one of those, or define input_fn(input_data, content_type) in inference.py to read it."
        )
    return decoder(input_data)


# ---- encoding responses ---------------------------------------------------------------------------
def _plain(prediction: Any) -> Any:
    """Tensors (torch, or anything with ``detach``/``numpy``) as numpy arrays; everything else as it is."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(prediction, torch.Tensor):
        return prediction.detach().cpu().numpy()
    return prediction


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _array_to_json(prediction: Any) -> bytes:
    return json.dumps(prediction, default=_json_default).encode("utf-8")


def _endpoint_not_batch() -> bool:
    """Whether this server answers an endpoint rather than a batch transform (which sets ``SAGEMAKER_BATCH``)."""
    return bool(os.environ.get("SLUICE_ENDPOINT_NAME")) and not os.environ.get("SAGEMAKER_BATCH")


def _array_to_csv(prediction: Any) -> bytes:
    import numpy as np

    if getattr(prediction, _BOOSTER_MARK, False) and np.ndim(prediction) == 1 and _endpoint_not_batch():
        # The XGBoost algorithm container's endpoint answer: one line, comma-separated (its "backwards compatible"
        # form, which code like np.fromstring(body, sep=",") reads); in batch it writes one prediction per line.
        return ",".join(str(v) for v in np.asarray(prediction).tolist()).encode("utf-8")
    array = np.asarray(prediction)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim > 2:
        raise InferenceError(f"a prediction of shape {array.shape} has no CSV form (at most 2 dimensions); ask for "
                             "application/json or application/x-npy, or define output_fn.", 500)
    out = io.StringIO()
    np.savetxt(out, array, delimiter=",", fmt="%s")
    return out.getvalue().encode("utf-8")


def _array_to_npy(prediction: Any) -> bytes:
    import numpy as np

    out = io.BytesIO()
    np.save(out, np.asarray(prediction), allow_pickle=False)
    return out.getvalue()


ENCODERS: dict[str, Callable[[Any], bytes]] = {JSON: _array_to_json, CSV: _array_to_csv, NPY: _array_to_npy}
"""Accept type → response encoder of the default ``output_fn``."""


def default_output_fn(prediction: Any, accept: str | None) -> tuple[bytes, str]:
    """Encode ``prediction`` as the first type in ``accept`` that there is an encoder for."""
    choices = [c.split(";", 1)[0].strip().lower() for c in (accept or DEFAULT_ACCEPT).split(",")]
    for choice in choices:
        choice = DEFAULT_ACCEPT if choice == ANY else choice
        encoder = ENCODERS.get(choice)
        if encoder is not None:
            return encoder(_plain(prediction)), choice
    raise UnsupportedFormatError(
        f"Accept {accept!r} is not supported by the default output_fn, which writes {', '.join(ENCODERS)}. "
        "Ask for one of those, or define output_fn(prediction, accept) in inference.py to write it."
    )


# ---- predicting -----------------------------------------------------------------------------------
def default_predict_fn(data: Any, model: Any) -> Any:
    """Run ``model`` on ``data`` the way its framework's container would."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        import numpy as np

        tensor = data if isinstance(data, torch.Tensor) else torch.as_tensor(np.asarray(data, dtype=np.float32))
        with torch.inference_mode():
            return model(tensor)
    xgb = sys.modules.get("xgboost")
    if xgb is not None and isinstance(model, xgb.Booster):
        return _booster_predict(xgb, data, model)
    if hasattr(model, "predict"):
        return model.predict(data)
    if callable(model):
        return model(data)
    raise InferenceError(
        f"the default predict_fn cannot run a {type(model).__module__}.{type(model).__name__}: it has no predict() "
        "and is not callable. Define predict_fn(data, model) in inference.py."
    )


_BOOSTER_MARK = "_sluice_booster_prediction"


def _booster_predict(xgb: Any, data: Any, model: Any) -> Any:
    """Predict as the XGBoost algorithm's server does: the rows must hold the model's features (a CSV row with
    the label still in front is refused, not silently shifted), and an early-stopped model uses its best
    iteration ("SageMaker hosting uses the best model for inference")."""
    import numpy as np

    if isinstance(data, xgb.DMatrix):
        matrix = data
    elif hasattr(data, "tocsr"):  # a scipy sparse matrix (text/libsvm)
        matrix = xgb.DMatrix(data.tocsr())
    else:
        matrix = xgb.DMatrix(np.asarray(data, dtype=np.float32))
    expected, got = model.num_features(), matrix.num_col()
    sparse = hasattr(data, "tocsr")
    if expected and (got > expected if sparse else got != expected):
        raise InferenceError(
            f"the rows have {got} feature columns but the model was trained on {expected}. Send the features only, "
            "in the training order, without the label column.", 400)
    best = model.attr("best_iteration")
    if best is not None:
        prediction = model.predict(matrix, iteration_range=(0, int(best) + 1))
    else:
        prediction = model.predict(matrix)
    return _mark_booster_prediction(np.asarray(prediction))


def _mark_booster_prediction(array: Any) -> Any:
    """The same array, flagged as a Booster's prediction so that the CSV encoder can answer in the XGBoost
    algorithm's form; it stays an ``ndarray`` for any user ``output_fn``."""
    import numpy as np

    global _BoosterPrediction
    if _BoosterPrediction is None:
        _BoosterPrediction = type("BoosterPrediction", (np.ndarray,), {_BOOSTER_MARK: True})
    return array.view(_BoosterPrediction)


_BoosterPrediction: Any = None


# ---- loading models -------------------------------------------------------------------------------
def _load_joblib(path: Path) -> Any:
    try:
        import joblib
    except ImportError:
        with path.open("rb") as fh:
            return pickle.load(fh)
    return joblib.load(path)


def _load_xgboost(path: Path) -> Any:
    with path.open("rb") as fh:
        head = fh.read(2)
    if head[:1] == b"\x80":  # a pickle (protocol 2+): a Booster or an XGBModel pickled whole
        return _load_joblib(path)
    import xgboost as xgb

    booster = xgb.Booster()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Unknown file format ... Using UBJSON as a guess": right
        booster.load_model(str(path))
    return booster


def _load_torchscript(path: Path) -> Any:
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.x nudges towards torch.export
            model = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception:
            obj = None
        if isinstance(obj, Mapping):
            raise ModelLoadError(
                f"{path.name} holds a state_dict (weights only), which cannot run without the model's class, and "
                "inference.py defines no model_fn. Define model_fn(model_dir) in inference.py that builds the "
                "model and loads the state_dict, or save a TorchScript model "
                "(torch.jit.save(torch.jit.script(model), 'model.pt'))."
            ) from exc
        raise ModelLoadError(
            f"{path.name} is not a TorchScript model ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
            "Save it with torch.jit.save(torch.jit.script(model), 'model.pt'), or define model_fn(model_dir) in "
            "inference.py."
        ) from exc
    model.eval()
    return model


def _is_xgboost_document(path: Path) -> bool:
    """Whether a ``.json`` / ``.ubj`` file is an XGBoost model (its document starts with ``learner``)."""
    with path.open("rb") as fh:
        return b"learner" in fh.read(64)


_LOADERS: dict[str, tuple[tuple[str, ...], Callable[[Path], Any]]] = {
    "sklearn": (("model.joblib", "model.pkl", "model.pickle"), _load_joblib),
    "xgboost": (("xgboost-model", "*.ubj", "*.json"), _load_xgboost),
    "pytorch": (("model.pt", "model.pth"), _load_torchscript),
}


def find_model_file(model_dir: str | Path, framework: str | None = None) -> tuple[Path, str] | None:
    """The model file the default ``model_fn`` would load, and its framework; the hinted framework first."""
    root = Path(model_dir)
    order = sorted(_LOADERS, key=lambda name: name != framework)
    for name in order:
        patterns, _ = _LOADERS[name]
        for pattern in patterns:
            matches = sorted(root.glob(pattern)) if "*" in pattern else [root / pattern]
            for path in matches:
                if not path.is_file():
                    continue
                if path.suffix in (".json", ".ubj") and not _is_xgboost_document(path):
                    continue
                return path, name
    return None


def default_model_fn(model_dir: str | Path, framework: str | None = None) -> Any:
    """Load the model file found in ``model_dir``; say clearly what to do when there is none."""
    found = find_model_file(model_dir, framework)
    if found is None:
        root = Path(model_dir)
        listing = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
        raise ModelLoadError(
            f"No model_fn in inference.py and no model file sluice recognises in {root} "
            f"(it holds {listing[:12] or 'nothing'}). Define model_fn(model_dir) in inference.py, or save the "
            "model as model.joblib (scikit-learn), xgboost-model (XGBoost) or model.pt (TorchScript)."
        )
    path, name = found
    _, load = _LOADERS[name]
    return load(path)
