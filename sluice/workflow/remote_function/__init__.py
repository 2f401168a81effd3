"""The files a ``@step`` function step's job runs: sluice's remote-function bootstrap.

The SDK ships ``job_driver.sh`` and its bootstrap scripts to the step's ``sagemaker_remote_function_bootstrap``
channel; sluice ships its own two files there when the step runs (:func:`bootstrap_files`):

- ``job_driver.sh``, the job's entrypoint (``/bin/bash /opt/ml/input/data/<channel>/job_driver.sh <args>``),
  which hands its container arguments to the invoker in the job's interpreter (``python`` on the instance's
  ``PATH`` is the environment the image maps to);
- ``invoke_function.py`` (:mod:`sluice.workflow.remote_function.invoke_function`), which prepares the
  environment, loads the function and its filled-in arguments, calls it and writes the result.

Both run inside the sandbox, which cannot reach the store, so they read only their channels and write only
``/opt/ml``; the runner (:mod:`sluice.workflow.runners.function`) moves everything in and out.
"""

from __future__ import annotations

from pathlib import Path

from sluice.workflow.remote_function.invoke_function import (
    ARGUMENTS_FILE,
    FUNCTION_FILE,
    INVOCATION_CHANNEL_NAME,
    JSON_RESULTS_FILE,
    RESULT_FILE,
)

__all__ = [
    "ARGUMENTS_FILE",
    "FUNCTION_FILE",
    "INVOCATION_CHANNEL_NAME",
    "INVOKER_SCRIPT_NAME",
    "JOB_DRIVER",
    "JSON_RESULTS_FILE",
    "RESULT_FILE",
    "bootstrap_files",
]

INVOKER_SCRIPT_NAME = "invoke_function.py"

JOB_DRIVER = f"""#!/bin/bash
# Entry point of a sluice @step function job: run the invoker beside this script in the job's Python
# (the environment the image maps to is first on PATH), with the step's container arguments.
set -eu
here="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
printf 'INFO: Invoking the @step function.\\n'
exec python "$here/{INVOKER_SCRIPT_NAME}" "$@"
"""


def bootstrap_files() -> dict[str, bytes]:
    """``{file name: content}`` for the bootstrap channel: the job driver and the invoker."""
    invoker = Path(__file__).with_name(INVOKER_SCRIPT_NAME).read_bytes()
    return {"job_driver.sh": JOB_DRIVER.encode(), INVOKER_SCRIPT_NAME: invoker}
