"""``sluice.processing``: the SageMaker SDK v2 processing classes, running locally.

``Processor``, ``ScriptProcessor`` and ``FrameworkProcessor`` build a ``CreateProcessingJob`` request
exactly as the SDK does (input and output names, upload locations for local sources and code, the
entrypoint) and hand it to the engine. Nothing here runs a job itself.

Upload locations (contract 5.15): a standalone job puts local inputs under ``<job>/input/<name>`` and code
under ``<job>/input/code/`` (``<job>/source/`` for a FrameworkProcessor). While a pipeline step compiles, code
goes to ``<pipeline>/code/<sha256>/<file>`` and local inputs to ``<pipeline>/<step>/input/<name>``, so building
the pipeline again gives the same step arguments (and the same cache key) unless the code changed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sluice.errors import SpecError
from sluice.jobs.naming import base_name_from_image, name_from_base
from sluice.session import Session
from sluice.storage import S3Uri
from sluice.storage.base import join_key
from sluice.workflow import is_pipeline_variable
from sluice.workflow.pipeline_context import (
    pipeline_step_location,
    reproducible_tar_gz,
    runnable_by_pipeline,
    stage_pipeline_code,
)

__all__ = [
    "FrameworkProcessor",
    "ProcessingInput",
    "ProcessingJob",
    "ProcessingOutput",
    "Processor",
    "ScriptProcessor",
]

log = logging.getLogger("sluice")

_CODE_DIR = "/opt/ml/processing/input/code/"
_ENTRYPOINT_DIR = "/opt/ml/processing/input/entrypoint/"


class ProcessingInput:
    """An input channel of a processing job (SDK v2 signature and defaults)."""

    def __init__(
        self, source: str | None = None, destination: str | None = None, input_name: str | None = None,
        s3_data_type: str = "S3Prefix", s3_input_mode: str = "File", s3_data_distribution_type: str = "FullyReplicated",
        s3_compression_type: str = "None", s3_input: Any = None, dataset_definition: Any = None,
        app_managed: bool = False,
    ) -> None:
        self.source, self.destination, self.input_name = source, destination, input_name
        self.s3_data_type, self.s3_input_mode = s3_data_type, s3_input_mode
        self.s3_data_distribution_type, self.s3_compression_type = s3_data_distribution_type, s3_compression_type
        self.s3_input, self.dataset_definition, self.app_managed = s3_input, dataset_definition, app_managed
        if s3_compression_type == "Gzip" and s3_input_mode != "Pipe":
            raise SpecError("Data can only be gzipped when the input mode is Pipe: use s3_input_mode='Pipe', "
                            "or store the objects uncompressed.")

    def _to_request_dict(self) -> dict[str, Any]:
        request: dict[str, Any] = {"InputName": self.input_name, "AppManaged": self.app_managed}
        if self.source is not None and self.destination is not None:
            request["S3Input"] = {
                "S3Uri": self.source, "LocalPath": self.destination, "S3DataType": self.s3_data_type,
                "S3InputMode": self.s3_input_mode, "S3DataDistributionType": self.s3_data_distribution_type,
                "S3CompressionType": self.s3_compression_type,
            }
        if self.dataset_definition is not None:
            dd = self.dataset_definition
            request["DatasetDefinition"] = dd._to_request_dict() if hasattr(dd, "_to_request_dict") else dict(dd)
        return request


class ProcessingOutput:
    """An output of a processing job (SDK v2 signature and defaults)."""

    def __init__(
        self, source: str | None = None, destination: str | None = None, output_name: str | None = None,
        s3_upload_mode: str = "EndOfJob", app_managed: bool = False, feature_store_output: Any = None,
    ) -> None:
        self.source, self.destination, self.output_name = source, destination, output_name
        self.s3_upload_mode, self.app_managed = s3_upload_mode, app_managed
        self.feature_store_output = feature_store_output

    def _to_request_dict(self) -> dict[str, Any]:
        request: dict[str, Any] = {"OutputName": self.output_name, "AppManaged": self.app_managed}
        if self.source is not None:
            request["S3Output"] = {"S3Uri": self.destination, "LocalPath": self.source,
                                   "S3UploadMode": self.s3_upload_mode}
        if self.feature_store_output is not None:
            fso = self.feature_store_output
            request["FeatureStoreOutput"] = {"FeatureGroupName": getattr(fso, "feature_group_name", fso)}
        return request


class ProcessingJob:
    """A started processing job: ``describe()``, ``wait()``, ``stop()``, ``logs()``."""

    def __init__(self, sagemaker_session: Session, job_name: str, inputs: list[ProcessingInput] | None = None,
                 outputs: list[ProcessingOutput] | None = None, output_kms_key: str | None = None) -> None:
        self.sagemaker_session = sagemaker_session
        self.job_name = job_name
        self.inputs = inputs or []
        self.outputs = outputs or []
        self.output_kms_key = output_kms_key

    @classmethod
    def from_processing_name(cls, sagemaker_session: Session, processing_job_name: str) -> ProcessingJob:
        sagemaker_session.describe_processing_job(processing_job_name)
        return cls(sagemaker_session, processing_job_name)

    def describe(self) -> dict[str, Any]:
        return self.sagemaker_session.describe_processing_job(self.job_name)

    def wait(self, logs: bool = True) -> None:
        """Block until the job ends, printing its logs unless a live display already shows them; raise if
        it did not complete (a ``Stopped`` job only warns)."""
        if logs and not _shown_live(self.job_name):
            self.sagemaker_session.logs_for_processing_job(self.job_name, wait=True)
        self.sagemaker_session.wait_for_processing_job(self.job_name)

    def stop(self) -> None:
        self.sagemaker_session.stop_processing_job(self.job_name)

    def logs(self, wait: bool = False) -> None:
        self.sagemaker_session.logs_for_processing_job(self.job_name, wait=wait)


def _shown_live(job_name: str) -> bool:
    """Whether this process is already streaming the job's logs to the terminal (``run(logs=True)``)."""
    from sluice.session import _RUNNING

    running = _RUNNING.get(job_name)
    return running is not None and running.display is not None


class Processor:
    """Runs a command in an image's environment (SDK v2 ``sagemaker.processing.Processor``)."""

    def __init__(
        self, role: str | None = None, image_uri: str | None = None, instance_count: int | None = None,
        instance_type: str | None = None, entrypoint: list[str] | None = None, volume_size_in_gb: int = 30,
        volume_kms_key: str | None = None, output_kms_key: str | None = None,
        max_runtime_in_seconds: int | None = None, base_job_name: str | None = None,
        sagemaker_session: Session | None = None, env: dict[str, str] | None = None,
        tags: list[dict[str, str]] | None = None, network_config: Any = None,
    ) -> None:
        if instance_count is None or instance_type is None:
            raise SpecError("instance_count and instance_type are required, e.g. instance_count=1, "
                            "instance_type='ml.m5.xlarge' (or 'local').")
        self.role, self.image_uri = role, image_uri
        self.instance_count, self.instance_type = instance_count, instance_type
        self.entrypoint = entrypoint
        self.volume_size_in_gb = volume_size_in_gb
        self.volume_kms_key, self.output_kms_key = volume_kms_key, output_kms_key
        self.max_runtime_in_seconds = max_runtime_in_seconds
        self.base_job_name = base_job_name
        self.sagemaker_session = sagemaker_session or Session()
        self.env, self.tags, self.network_config = env, tags, network_config
        self.jobs: list[ProcessingJob] = []
        self.latest_job: ProcessingJob | None = None
        self._current_job_name: str | None = None
        self.arguments: list[str] | None = None
        for name, value in (("volume_kms_key", volume_kms_key), ("output_kms_key", output_kms_key),
                            ("network_config", network_config)):
            if value is not None:
                log.info("%s has no effect locally: sluice records it on the job and otherwise ignores it.", name)

    # ---- the SDK's run ----------------------------------------------------------------------
    @runnable_by_pipeline
    def run(
        self, inputs: list[ProcessingInput] | None = None, outputs: list[ProcessingOutput] | None = None,
        arguments: list[str] | None = None, wait: bool = True, logs: bool = True, job_name: str | None = None,
        experiment_config: dict | None = None, kms_key: str | None = None,
    ) -> None:
        if logs and not wait:
            raise ValueError("Logs can only be shown if wait is set to True. Please either set wait to True or set "
                             "logs to False.")
        self._current_job_name = self._generate_current_job_name(job_name)
        norm_inputs = self._normalize_inputs(inputs)
        norm_outputs = self._normalize_outputs(outputs)
        self.arguments = arguments
        self._start(norm_inputs, norm_outputs, experiment_config, wait, logs)

    # ---- building the request ---------------------------------------------------------------
    def _generate_current_job_name(self, job_name: str | None = None) -> str:
        if job_name is not None:
            return job_name
        base = self.base_job_name or base_name_from_image(self.image_uri, default="processing-job")
        return name_from_base(base)

    def _s3_prefix(self, *parts: str) -> str:
        sess = self.sagemaker_session
        key = join_key(sess.default_bucket_prefix or "", "/".join(p.strip("/") for p in parts))
        return f"s3://{sess.default_bucket()}/{key}"

    def _normalize_inputs(self, inputs: list[ProcessingInput] | None) -> list[ProcessingInput]:
        normalized: list[ProcessingInput] = []
        for n, item in enumerate(inputs or [], start=1):
            if not isinstance(item, ProcessingInput):
                raise TypeError(f"inputs must be ProcessingInput objects, not {type(item).__name__}.")
            if item.input_name is None:
                item.input_name = f"input-{n}"
            if (item.source is not None and not is_pipeline_variable(item.source)
                    and not str(item.source).startswith("s3://") and item.dataset_definition is None):
                item.source = self._upload_local(item.source, item.input_name)
            normalized.append(item)
        return normalized

    def _upload_local(self, source: str, input_name: str) -> str:
        """Upload a local input to ``<job>/input/<name>`` (in a pipeline: ``<pipeline>/<step>/input/<name>``)."""
        src = Path(source.removeprefix("file://"))
        if not src.exists():
            raise SpecError(f"input source {source!r} is neither an s3:// URI nor an existing local path.")
        sess = self.sagemaker_session
        in_pipeline = pipeline_step_location(sess, "input", input_name)
        if in_pipeline is not None:
            target = S3Uri.parse(in_pipeline)
            return sess.upload_data(str(src), bucket=target.bucket, key_prefix=target.key)
        prefix = join_key(sess.default_bucket_prefix or "", f"{self._current_job_name}/input/{input_name}")
        return sess.upload_data(str(src), bucket=sess.default_bucket(), key_prefix=prefix)

    def _normalize_outputs(self, outputs: list[ProcessingOutput] | None) -> list[ProcessingOutput]:
        normalized: list[ProcessingOutput] = []
        for n, item in enumerate(outputs or [], start=1):
            if not isinstance(item, ProcessingOutput):
                raise TypeError(f"outputs must be ProcessingOutput objects, not {type(item).__name__}.")
            if item.output_name is None:
                item.output_name = f"output-{n}"
            if item.destination is None or (not is_pipeline_variable(item.destination)
                                            and not str(item.destination).startswith("s3://")):
                item.destination = self._s3_prefix(self._current_job_name, "output", item.output_name)
            normalized.append(item)
        return normalized

    def _entrypoint(self) -> list[str] | None:
        return self.entrypoint

    def _start(self, inputs: list[ProcessingInput], outputs: list[ProcessingOutput],
               experiment_config: dict | None, wait: bool, logs: bool) -> None:
        app: dict[str, Any] = {"ImageUri": self.image_uri or ""}
        entrypoint = self._entrypoint()
        if entrypoint:
            app["ContainerEntrypoint"] = entrypoint
        if self.arguments:
            app["ContainerArguments"] = [a if is_pipeline_variable(a) else str(a) for a in self.arguments]
        resources = {"ClusterConfig": {"InstanceCount": self.instance_count, "InstanceType": self.instance_type,
                                       "VolumeSizeInGB": self.volume_size_in_gb}}
        if self.volume_kms_key:
            resources["ClusterConfig"]["VolumeKmsKeyId"] = self.volume_kms_key
        output_config: dict[str, Any] = {"Outputs": [o._to_request_dict() for o in outputs]}
        if self.output_kms_key:
            output_config["KmsKeyId"] = self.output_kms_key
        net = self.network_config
        self.sagemaker_session.process(
            inputs=[i._to_request_dict() for i in inputs],
            output_config=output_config,
            job_name=self._current_job_name,
            resources=resources,
            stopping_condition={"MaxRuntimeInSeconds": self.max_runtime_in_seconds}
            if self.max_runtime_in_seconds else None,
            app_specification=app,
            environment=self.env,
            network_config=net._to_request_dict() if hasattr(net, "_to_request_dict") else net,
            role_arn=self.role,
            tags=self.tags,
            experiment_config=experiment_config,
            show_logs=wait and logs,
        )
        job = ProcessingJob(self.sagemaker_session, self._current_job_name, inputs, outputs, self.output_kms_key)
        self.jobs.append(job)
        self.latest_job = job
        if wait:
            self.sagemaker_session.wait_for_processing_job(job.job_name)


class ScriptProcessor(Processor):
    """Runs one script file with ``command`` (SDK v2 ``sagemaker.processing.ScriptProcessor``)."""

    def __init__(
        self, role: str | None = None, image_uri: str | None = None, command: list[str] | None = None,
        instance_count: int | None = None, instance_type: str | None = None, volume_size_in_gb: int = 30,
        volume_kms_key: str | None = None, output_kms_key: str | None = None,
        max_runtime_in_seconds: int | None = None, base_job_name: str | None = None,
        sagemaker_session: Session | None = None, env: dict[str, str] | None = None,
        tags: list[dict[str, str]] | None = None, network_config: Any = None,
    ) -> None:
        if not command:
            raise SpecError("ScriptProcessor needs command, the interpreter to run the code with, e.g. ['python3'].")
        self._CODE_CONTAINER_BASE_PATH = _CODE_DIR
        self._CODE_CONTAINER_INPUT_NAME = "code"
        self.command = command
        super().__init__(role, image_uri, instance_count, instance_type, None, volume_size_in_gb, volume_kms_key,
                         output_kms_key, max_runtime_in_seconds, base_job_name, sagemaker_session, env, tags,
                         network_config)

    @runnable_by_pipeline
    def run(  # type: ignore[override]
        self, code: str, inputs: list[ProcessingInput] | None = None, outputs: list[ProcessingOutput] | None = None,
        arguments: list[str] | None = None, wait: bool = True, logs: bool = True, job_name: str | None = None,
        experiment_config: dict | None = None, kms_key: str | None = None,
    ) -> None:
        if logs and not wait:
            raise ValueError("Logs can only be shown if wait is set to True. Please either set wait to True or set "
                             "logs to False.")
        self._current_job_name = self._generate_current_job_name(job_name)
        code_uri = self._handle_user_code(code)
        self._code_name = Path(code_uri.removeprefix("s3://")).name
        inputs = [*(inputs or []), ProcessingInput(source=code_uri, destination=_CODE_DIR, input_name="code")]
        norm_inputs = self._normalize_inputs(inputs)
        norm_outputs = self._normalize_outputs(outputs)
        self.arguments = arguments
        self._start(norm_inputs, norm_outputs, experiment_config, wait, logs)

    def _handle_user_code(self, code: str) -> str:
        if code.startswith("s3://"):
            return code
        path = Path(code.removeprefix("file://"))
        if not path.exists():
            raise SpecError(f"code {code!r} does not exist; give the path of a script file or an s3:// URI.")
        if not path.is_file():
            raise SpecError(f"code {code!r} is a directory; ScriptProcessor takes one file. For a directory use "
                            "FrameworkProcessor(source_dir=...).")
        sess = self.sagemaker_session
        staged = stage_pipeline_code(sess, path.read_bytes(), path.name)
        if staged is not None:
            return staged
        prefix = join_key(sess.default_bucket_prefix or "", f"{self._current_job_name}/input/code")
        return sess.upload_data(str(path), bucket=sess.default_bucket(), key_prefix=prefix)

    def _entrypoint(self) -> list[str]:
        return [*self.command, f"{_CODE_DIR}{self._code_name}"]


class FrameworkProcessor(ScriptProcessor):
    """Runs a script from a ``source_dir`` (with optional ``requirements.txt``) in a framework's environment."""

    framework_entrypoint_command = ["/bin/bash"]

    def __init__(
        self, estimator_cls: Any = None, framework_version: str | None = None, role: str | None = None,
        instance_count: int | None = None, instance_type: str | None = None, py_version: str = "py3",
        image_uri: str | None = None, command: list[str] | None = None, volume_size_in_gb: int = 30,
        volume_kms_key: str | None = None, output_kms_key: str | None = None, code_location: str | None = None,
        max_runtime_in_seconds: int | None = None, base_job_name: str | None = None,
        sagemaker_session: Session | None = None, env: dict[str, str] | None = None,
        tags: list[dict[str, str]] | None = None, network_config: Any = None,
    ) -> None:
        self.estimator_cls, self.framework_version, self.py_version = estimator_cls, framework_version, py_version
        self.code_location = code_location.rstrip("/") if code_location else None
        sess = sagemaker_session or Session()
        if image_uri is None:
            framework = getattr(estimator_cls, "_framework_name", None)
            if framework is None:
                raise SpecError("FrameworkProcessor needs image_uri, or an estimator_cls whose framework names an "
                                "image (e.g. sluice.sklearn.SKLearn).")
            from sluice import image_uris

            image_uri = image_uris.retrieve(framework, region=sess.boto_region_name, version=framework_version,
                                            py_version=py_version, instance_type=instance_type)
        super().__init__(role, image_uri, command or ["python"], instance_count, instance_type, volume_size_in_gb,
                         volume_kms_key, output_kms_key, max_runtime_in_seconds, base_job_name, sess, env, tags,
                         network_config)

    @runnable_by_pipeline
    def run(  # type: ignore[override]
        self, code: str, source_dir: str | None = None, dependencies: list[str] | None = None,
        git_config: dict | None = None, inputs: list[ProcessingInput] | None = None,
        outputs: list[ProcessingOutput] | None = None, arguments: list[str] | None = None, wait: bool = True,
        logs: bool = True, job_name: str | None = None, experiment_config: dict | None = None,
        kms_key: str | None = None, codeartifact_repo_arn: str | None = None,
    ) -> None:
        if logs and not wait:
            raise ValueError("Logs can only be shown if wait is set to True. Please either set wait to True or set "
                             "logs to False.")
        if git_config:
            raise SpecError("git_config needs network access to a Git host, which sluice does not use; clone the "
                            "repository and pass source_dir instead.")
        self._current_job_name = self._generate_current_job_name(job_name)
        source_uri = self._pack_source(code, source_dir, dependencies or [])
        entry_uri = self._upload_runproc(code)
        inputs = [
            *(inputs or []),
            ProcessingInput(source=source_uri, destination=_CODE_DIR, input_name="code"),
            ProcessingInput(source=entry_uri, destination=_ENTRYPOINT_DIR, input_name="entrypoint"),
        ]
        norm_inputs = self._normalize_inputs(inputs)
        norm_outputs = self._normalize_outputs(outputs)
        self.arguments = arguments
        self._start(norm_inputs, norm_outputs, experiment_config, wait, logs)

    def _source_prefix(self) -> str:
        base = self.code_location or f"s3://{self.sagemaker_session.default_bucket()}"
        return f"{base}/{self._current_job_name}/source"

    def _pack_source(self, code: str, source_dir: str | None, dependencies: list[str]) -> str:
        if source_dir and source_dir.startswith("s3://"):
            if not source_dir.endswith("/sourcedir.tar.gz"):
                raise SpecError(f"an s3:// source_dir must name a sourcedir.tar.gz object, not {source_dir!r}.")
            return source_dir
        root = Path(source_dir) if source_dir else Path(code).parent
        entry = root / code if source_dir else Path(code)
        if not root.is_dir():
            raise SpecError(f"source_dir {str(root)!r} is not a directory.")
        if not entry.is_file():
            raise SpecError(f"code {code!r} was not found{' in source_dir ' + repr(source_dir) if source_dir else ''}; "
                            "give the entry point's path relative to source_dir.")
        members = [(path, path.relative_to(root).as_posix()) for path in sorted(root.rglob("*"))
                   if path.is_file() and "__pycache__" not in path.parts]
        for dep in dependencies:
            dep_path = Path(dep)
            if not dep_path.exists():
                raise SpecError(f"dependency {dep!r} does not exist.")
            members.append((dep_path, dep_path.name))
        return self._put("sourcedir.tar.gz", reproducible_tar_gz(members))

    def _put(self, filename: str, data: bytes) -> str:
        """Store one code file: ``<code_location>/<job>/source/<filename>``, or content-addressed in a pipeline."""
        staged = stage_pipeline_code(self.sagemaker_session, data, filename, base=self.code_location)
        if staged is not None:
            return staged
        uri = f"{self._source_prefix()}/{filename}"
        target = S3Uri.parse(uri)
        store = self.sagemaker_session.store
        if not store.bucket_exists(target.bucket):
            store.create_bucket(target.bucket)
        store.put(target.bucket, target.key, data)
        return uri

    def _upload_runproc(self, code: str) -> str:
        script = Path(code).name if not code.startswith("s3://") else code.rsplit("/", 1)[-1]
        return self._put("runproc.sh", _runproc(" ".join(self.command), script).encode())

    def _entrypoint(self) -> list[str]:
        return [*self.framework_entrypoint_command, f"{_ENTRYPOINT_DIR}runproc.sh"]


def _runproc(command: str, script: str) -> str:
    """The SDK's ``runproc.sh``, with the requirements installed once per distinct file into a shared cache."""
    return f"""#!/bin/bash
cd /opt/ml/processing/input/code/
tar -xzf sourcedir.tar.gz

# Exit on any error. SageMaker uses error code to mark failed job.
set -e

if [[ -f 'requirements.txt' ]]; then
    # Installed once per distinct requirements.txt into sluice's cache, not into the interpreter itself.
    # The key covers the interpreter too; mv -T never moves into a cache another instance just made.
    key=$( (command -v python; cat requirements.txt) | sha256sum | cut -c1-16)
    deps="${{SLUICE_DEPS_ROOT:-/tmp/sluice-deps}}/$key"
    if [[ ! -d "$deps" ]]; then
        tmp="$deps.tmp.$$"
        python -m pip install --disable-pip-version-check --quiet --target "$tmp" -r requirements.txt
        mv -T "$tmp" "$deps" 2>/dev/null || rm -rf "$tmp"
    fi
    export PYTHONPATH="$deps${{PYTHONPATH:+:$PYTHONPATH}}"
fi

{command} {script} "$@"
"""
