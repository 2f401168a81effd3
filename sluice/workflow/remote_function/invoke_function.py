"""Run one ``@step`` function inside its training job: sluice's remote-function invoker.

sluice uploads this file to the step's ``sagemaker_remote_function_bootstrap`` channel and ``job_driver.sh``
runs it in the job's own interpreter, where sluice itself may not be importable. So it uses only the
standard library (and cloudpickle when the environment has it; a function pickled by value needs it to
load). The runner has already filled in the arguments' pipeline variables. In the job this script:

1. checks that the interpreter's Python version is the one that pickled the function;
2. runs the step's ``pre_exec.sh`` and pip-installs its requirements file (the
   ``pre_exec_script_and_dependencies`` channel) into sluice's shared cache (``SLUICE_DEPS_ROOT``), once
   per distinct file and interpreter, and puts that directory on ``sys.path``;
3. loads the function and its arguments from the invocation channel and calls the function;
4. writes the pickled return value (``payload.pkl``) and ``results.json`` (``{"Result": ..., "Exception":
   ...}``, the SDK's shape) to ``/opt/ml/output/data``; the runner copies both to ``<S3OutputPath>/``.

Any exception ends the job Failed as the SDK's invoker does: ``/opt/ml/output/failure`` gets
``repr(exception)`` (so the step's FailureReason names the exception's type and message), the traceback
goes to the log, and the exit code is the exception's ``errno`` or 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import traceback
from typing import Any

INVOCATION_CHANNEL_NAME = "sluice_function_invocation"
SCRIPT_AND_DEPENDENCIES_CHANNEL_NAME = "pre_exec_script_and_dependencies"
PRE_EXECUTION_SCRIPT_NAME = "pre_exec.sh"
FUNCTION_FILE = "function.pkl"
ARGUMENTS_FILE = "arguments.pkl"
RESULT_FILE = "payload.pkl"
JSON_RESULTS_FILE = "results.json"
JSON_SERIALIZED_RESULT_KEY = "Result"
DEFAULT_FAILURE_CODE = 1


class RuntimeEnvironmentError(Exception):
    """The job's environment could not be prepared (Python version, pre-execution commands, pip)."""


class DeserializationError(Exception):
    """The function or its arguments could not be loaded in the job's interpreter."""


class SerializationError(Exception):
    """The function's return value could not be pickled."""


def _base_dir() -> str:
    """``/opt/ml`` as this instance sees it (redirected through SAGEMAKER_BASE_DIR without a sandbox)."""
    return os.environ.get("SAGEMAKER_BASE_DIR") or "/opt/ml"


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--client_python_version", type=str)
    parser.add_argument("--dependency_settings", type=str)
    parser.add_argument("--pipeline_step_name", type=str)
    args, _ = parser.parse_known_args(argv)
    return args


def _check_python_version(client: str | None) -> None:
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if client and client != here:
        raise RuntimeEnvironmentError(
            f"Python version found in the job is {here}, which does not match the Python version the function "
            f"was pickled with ({client}). Run the step on a Python {client} interpreter: map its image_uri to "
            "one in [images] of sluice's config.toml.")


def _dependency_file(settings: str | None) -> str | None:
    if not settings:
        return None
    try:
        value = json.loads(settings).get("dependency_file")
    except (ValueError, AttributeError):
        raise RuntimeEnvironmentError(f"--dependency_settings {settings!r} is not the JSON object the "
                                      "step's definition should carry.") from None
    return value if isinstance(value, str) and value else None


def _run_pre_execution_script(scripts_dir: str) -> None:
    script = os.path.join(scripts_dir, PRE_EXECUTION_SCRIPT_NAME)
    if not os.path.isfile(script):
        return
    print("INFO: Running the pre-execution commands.", flush=True)
    done = subprocess.run(["/bin/bash", "-eu", script], cwd=scripts_dir, stderr=subprocess.PIPE, text=True)
    if done.stderr:
        sys.stderr.write(done.stderr)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeEnvironmentError(f"the pre-execution commands failed (exit {done.returncode}): {tail}")


def _install_requirements(path: str) -> str:
    """``pip install --target`` into the shared cache, once per file content and interpreter; the directory."""
    python = os.path.realpath(sys.executable)
    with open(path, "rb") as fh:
        digest = hashlib.sha256(python.encode() + b"\0" + fh.read()).hexdigest()[:16]
    root = os.environ.get("SLUICE_DEPS_ROOT") or "/tmp/sluice-deps"
    target = os.path.join(root, f"function-{digest}")
    if os.path.isdir(target):
        return target
    os.makedirs(root, exist_ok=True)
    tmp = f"{target}.tmp.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"INFO: Installing {os.path.basename(path)} with pip.", flush=True)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
                           "--no-input", "--target", tmp, "-r", path], capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise RuntimeEnvironmentError(f"pip install -r {os.path.basename(path)} failed (exit {done.returncode}): "
                                      f"{tail}")
    try:
        os.replace(tmp, target)
    except OSError:  # another instance installed the same file first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _prepare_environment(dependency_settings: str | None, data_dir: str) -> None:
    scripts_dir = os.path.join(data_dir, SCRIPT_AND_DEPENDENCIES_CHANNEL_NAME)
    _run_pre_execution_script(scripts_dir)
    name = _dependency_file(dependency_settings)
    if name is None:
        return
    path = os.path.join(scripts_dir, name)
    if not os.path.isfile(path):
        raise RuntimeEnvironmentError(f"the dependencies file {name!r} is not in the "
                                      f"{SCRIPT_AND_DEPENDENCIES_CHANNEL_NAME} channel.")
    target = _install_requirements(path)
    sys.path.insert(0, target)
    existing = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = target + (os.pathsep + existing if existing else "")


def _load(path: str, what: str) -> Any:
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)  # a cloudpickle payload imports cloudpickle by itself
    except Exception as exc:
        raise DeserializationError(
            f"Error when loading the {what} from {os.path.basename(path)}: {exc!r}. The modules it needs must be "
            "importable in the job's Python (install them, or list them in dependencies=).") from exc


def _dumps(obj: Any) -> bytes:
    try:
        import cloudpickle
    except ImportError:
        return pickle.dumps(obj)
    return bytes(cloudpickle.dumps(obj))


def _write_results(result: Any, out_dir: str) -> None:
    try:
        payload = _dumps(result)
    except Exception as exc:
        raise SerializationError(
            f"Error when serializing object of type [{type(result).__name__}]: {exc!r}") from exc
    try:
        text = json.dumps({JSON_SERIALIZED_RESULT_KEY: result, "Exception": None})
    except (TypeError, ValueError):
        shown = str(result)
        shown = shown if len(shown) <= 200 else shown[:200] + "..."
        text = json.dumps({JSON_SERIALIZED_RESULT_KEY: None,
                           "Exception": f"The function return ({shown}) is not JSON serializable."})
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, RESULT_FILE), "wb") as fh:
        fh.write(payload)
    with open(os.path.join(out_dir, JSON_RESULTS_FILE), "w") as fh:
        fh.write(text)


def _handle_error(error: BaseException, base: str) -> int:
    """Record ``error`` as the SDK does (``repr`` in the failure file); the exit code."""
    traceback.print_exception(error)
    failure = os.path.join(base, "output", "failure")
    if not os.path.exists(failure):
        os.makedirs(os.path.dirname(failure), exist_ok=True)
        with open(failure, "w") as fh:
            fh.write(repr(error))
    if isinstance(error, (RuntimeEnvironmentError, DeserializationError, SerializationError)):
        return DEFAULT_FAILURE_CODE
    try:
        code = int(getattr(error, "errno", None) or DEFAULT_FAILURE_CODE)
    except (TypeError, ValueError):
        code = DEFAULT_FAILURE_CODE
    return code if 0 < code < 256 else DEFAULT_FAILURE_CODE


def main(argv: list[str] | None = None) -> int:
    """Prepare, load, call, write; the job's exit code."""
    base = _base_dir()
    data_dir = os.path.join(base, "input", "data")
    try:
        args = _parse_args(list(sys.argv[1:] if argv is None else argv))
        _check_python_version(args.client_python_version)
        _prepare_environment(args.dependency_settings, data_dir)
        invocation = os.path.join(data_dir, INVOCATION_CHANNEL_NAME)
        func = _load(os.path.join(invocation, FUNCTION_FILE), "function")
        func_args, func_kwargs = _load(os.path.join(invocation, ARGUMENTS_FILE), "function's arguments")
        name = getattr(func, "__name__", "function")
        print(f"INFO: Calling {name} (step {args.pipeline_step_name}).", flush=True)
        result = func(*func_args, **func_kwargs)
        _write_results(result, os.path.join(base, "output", "data"))
    except Exception as exc:
        return _handle_error(exc, base)
    print("INFO: The function returned; its result is written.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
