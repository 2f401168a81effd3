"""``sluice.model``: the SDK v2 ``Model`` and the framework models, recorded locally and served locally.

A model is an image (which maps to an environment), a ``model.tar.gz`` and an environment. With
``entry_point``, the code is repacked into the archive under ``code/`` and ``SAGEMAKER_PROGRAM`` /
``SAGEMAKER_SUBMIT_DIRECTORY`` point the model server at it, as the SDK does. Under a ``PipelineSession``
the repacked archive is reproducible and stored where its content decides the path, so a rebuilt ModelStep
has the same arguments (SDK issue #2736); a ``model_data`` known only when the pipeline runs is repacked by
the repack step its ModelStep adds. ``create()`` records a ``DescribeModel``-shaped resource;
``deploy()`` starts a local endpoint; ``transformer()`` makes a batch ``Transformer``; ``register()`` adds a
version to a model package group.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import tarfile
from pathlib import Path
from typing import Any

from sluice.errors import SpecError
from sluice.jobs.naming import base_name_from_image, name_from_base
from sluice.serving.registry import MODEL_KIND, record_model
from sluice.session import Session
from sluice.storage import S3Uri
from sluice.workflow import is_pipeline_variable
from sluice.workflow.pipeline_context import (
    PipelineSession,
    model_create_request,
    model_package_request,
    reproducible_tar_gz,
    runnable_by_pipeline,
)
from sluice.workflow.repack import code_members

__all__ = ["FrameworkModel", "Model", "ModelPackage"]

log = logging.getLogger("sluice")

class Model:
    """A deployable model (SDK v2 ``sagemaker.model.Model``)."""

    def __init__(
        self, image_uri: str | None = None, model_data: str | None = None, role: str | None = None,
        predictor_cls: Any = None, env: dict[str, str] | None = None, name: str | None = None,
        vpc_config: dict | None = None, sagemaker_session: Session | None = None,
        enable_network_isolation: bool | None = None, model_kms_key: str | None = None,
        image_config: dict | None = None, source_dir: str | None = None, code_location: str | None = None,
        entry_point: str | None = None, container_log_level: int = logging.INFO,
        dependencies: list[str] | None = None, git_config: dict | None = None, resources: Any = None,
        **kwargs: Any,
    ) -> None:
        if git_config:
            raise SpecError("git_config needs network access to a Git host; clone it and pass source_dir.")
        self.image_uri = image_uri or ""
        self.model_data = model_data
        self.role = role
        self.predictor_cls = predictor_cls
        self.env = dict(env or {})
        self.name = name
        self.vpc_config = vpc_config
        self.sagemaker_session = sagemaker_session or Session()
        self.enable_network_isolation = bool(enable_network_isolation)
        self.source_dir, self.entry_point, self.dependencies = source_dir, entry_point, dependencies or []
        self.code_location = code_location
        self.container_log_level = container_log_level
        self.endpoint_name: str | None = None
        self._created = False
        self._repacked_model_data: str | None = None

    # ---- naming and packing -------------------------------------------------------------------
    def _ensure_name(self) -> str:
        if not self.name:
            self.name = name_from_base(base_name_from_image(self.image_uri, default="model"))
        return self.name

    def _framework_env(self) -> dict[str, str]:
        if not self.entry_point:
            return {}
        return {
            "SAGEMAKER_PROGRAM": Path(self.entry_point).name,
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": str(self.container_log_level),
            "SAGEMAKER_REGION": self.sagemaker_session.boto_region_name,
        }

    def _repack(self) -> str | None:
        """``model_data`` with the code added under ``code/``, uploaded beside it (the SDK's repack).

        Standalone, the archive goes to ``<code_location or s3://<bucket>>/<model name>/model.tar.gz``. Under a
        PipelineSession it goes to ``<code_location or s3://<bucket>[/<prefix>]>/model/<sha256>/model.tar.gz``:
        ``model.create()`` / ``register()`` build a ModelStep's request at once, before any pipeline name is
        known, so the path names only the content. It is computed again on every call there, so a ModelStep
        built after the code changed points at the new archive.

        A ``model_data`` known only when the pipeline runs (a step's property) cannot be repacked now: it is
        returned as it is, and the ModelStep's repack step (:mod:`sluice.workflow.repack`) repacks it then.
        """
        if not self.entry_point or is_pipeline_variable(self.model_data):
            return self.model_data
        sess = self.sagemaker_session
        pipeline = isinstance(sess, PipelineSession)
        if self._repacked_model_data and not pipeline:
            return self._repacked_model_data
        data = self._repacked_archive()
        if pipeline:
            root = f"s3://{sess.default_bucket()}" + (f"/{sess.default_bucket_prefix.strip('/')}"
                                                      if sess.default_bucket_prefix else "")
            base = self.code_location.rstrip("/") if self.code_location else root
            target = S3Uri.parse(f"{base}/model/{hashlib.sha256(data).hexdigest()}/model.tar.gz")
        else:
            base = self.code_location.rstrip("/") if self.code_location else f"s3://{sess.default_bucket()}"
            target = S3Uri.parse(f"{base}/{self._ensure_name()}/model.tar.gz")
        if not sess.store.bucket_exists(target.bucket):
            sess.store.create_bucket(target.bucket)
        if pipeline:
            if not sess.store.exists(target.bucket, target.key):  # the path names the bytes: there already
                sess.store.put(target.bucket, target.key, data)
            return str(target)
        sess.store.put(target.bucket, target.key, data)
        self._repacked_model_data = str(target)
        return self._repacked_model_data

    def _repacked_archive(self) -> bytes:
        """The ``model.tar.gz`` of ``model_data`` with the code under ``code/``, the same bytes for the same
        model and the same code files: the code's members carry no timestamps or owners
        (:func:`~sluice.workflow.pipeline_context.reproducible_tar_gz`), the gzip header no time. The code is
        what :func:`~sluice.workflow.repack.code_members` lists, as for a pipeline's repack step."""
        sess = self.sagemaker_session
        members = code_members(str(self.entry_point), self.source_dir, self.dependencies)
        code = reproducible_tar_gz([(path, f"code/{name}") for path, name in members])
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as out:
            if self.model_data:
                uri = S3Uri.parse(self.model_data)
                try:
                    data = sess.store.get_bytes(uri.bucket, uri.key)
                except Exception as exc:
                    raise SpecError(f"model_data {self.model_data} cannot be read: {exc}") from None
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as src:
                    for member in src.getmembers():
                        if member.name.lstrip("./").startswith("code/"):
                            continue  # the new code replaces any old one
                        out.addfile(member, src.extractfile(member) if member.isfile() else None)
            with tarfile.open(fileobj=io.BytesIO(code), mode="r:gz") as src:
                for member in src.getmembers():
                    out.addfile(member, src.extractfile(member) if member.isfile() else None)
        return buf.getvalue()

    def prepare_container_def(self, instance_type: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """The ``PrimaryContainer`` of ``CreateModel``."""
        container: dict[str, Any] = {"Image": self.image_uri, "Environment": {**self._framework_env(), **self.env}}
        data = self._repack()
        if data:
            container["ModelDataUrl"] = data
        return container

    # ---- the SDK's surface --------------------------------------------------------------------
    @runnable_by_pipeline
    def create(self, instance_type: str | None = None, accelerator_type: str | None = None,
               serverless_inference_config: Any = None, tags: list | None = None,
               accept_eula: bool | None = None) -> None:
        """Record the model (``CreateModel``); it then has a ``ModelName`` others can refer to.

        The request is the one a pipeline's ``ModelStep(step_args=model.create())`` holds, recorded by
        :func:`record_model`, so a model looks the same however it was made.
        """
        if self._created:
            return
        from sluice.runtime.environments import resolve_image

        self._ensure_name()
        resolve_image(self.image_uri, self.sagemaker_session.config).check()
        request = model_create_request(self, instance_type=instance_type, accelerator_type=accelerator_type,
                                       serverless_inference_config=serverless_inference_config, tags=tags)
        record_model(self.sagemaker_session, request)
        self._created = True

    def delete_model(self) -> None:
        if not self.name or not self.sagemaker_session.metadata.delete_resource(MODEL_KIND, self.name):
            raise SpecError(f"model {self.name!r} does not exist (create() records it).")
        self._created = False

    def deploy(
        self, initial_instance_count: int | None = None, instance_type: str | None = None, serializer: Any = None,
        deserializer: Any = None, accelerator_type: str | None = None, endpoint_name: str | None = None,
        tags: list | None = None, kms_key: str | None = None, wait: bool = True, data_capture_config: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Start a local endpoint serving this model; returns a predictor for it."""
        if initial_instance_count is None or instance_type is None:
            raise SpecError("deploy() needs initial_instance_count and instance_type, e.g. 1 and 'ml.m5.large'.")
        self.create(instance_type=instance_type)
        from sluice.predictor import Predictor
        from sluice.serving.endpoints import deploy_endpoint

        name = endpoint_name or name_from_base(base_name_from_image(self.image_uri, default="endpoint"))
        deploy_endpoint(self._ensure_name(), name, initial_instance_count, instance_type,
                        self.sagemaker_session.config, wait=wait)
        self.endpoint_name = name
        cls = self.predictor_cls or Predictor
        predictor = cls(name, sagemaker_session=self.sagemaker_session)
        if serializer is not None:
            predictor.serializer = serializer
        if deserializer is not None:
            predictor.deserializer = deserializer
        return predictor

    def transformer(
        self, instance_count: int, instance_type: str, strategy: str | None = None, assemble_with: str | None = None,
        output_path: str | None = None, output_kms_key: str | None = None, accept: str | None = None,
        env: dict[str, str] | None = None, max_concurrent_transforms: int | None = None,
        max_payload: int | None = None, tags: list | None = None, volume_kms_key: str | None = None,
    ) -> Any:
        """A batch ``Transformer`` for this model (recorded first if it is not yet)."""
        self.create(instance_type=instance_type)
        from sluice.transformer import Transformer

        return Transformer(self._ensure_name(), instance_count, instance_type, strategy=strategy,
                           assemble_with=assemble_with, output_path=output_path, output_kms_key=output_kms_key,
                           accept=accept, max_concurrent_transforms=max_concurrent_transforms,
                           max_payload=max_payload, tags=tags, env=env, sagemaker_session=self.sagemaker_session,
                           volume_kms_key=volume_kms_key)

    @runnable_by_pipeline
    def register(
        self, content_types: list[str] | None = None, response_types: list[str] | None = None,
        inference_instances: list[str] | None = None, transform_instances: list[str] | None = None,
        model_package_name: str | None = None, model_package_group_name: str | None = None,
        image_uri: str | None = None, model_metrics: Any = None, metadata_properties: Any = None,
        marketplace_cert: bool = False, approval_status: str | None = None, description: str | None = None,
        drift_check_baselines: Any = None, customer_metadata_properties: dict[str, str] | None = None,
        validation_specification: Any = None, domain: str | None = None, task: str | None = None,
        sample_payload_url: str | None = None, framework: str | None = None, framework_version: str | None = None,
        nearest_model_name: str | None = None, data_input_configuration: Any = None, **kwargs: Any,
    ) -> ModelPackage:
        """Add this model as a new version of ``model_package_group_name`` (created if missing).

        The ``CreateModelPackage`` request is the one a pipeline's ``ModelStep(step_args=model.register())``
        holds (every argument above has its field), checked against botocore's shape before anything is recorded.
        """
        from sluice.model_registry import create_model_package

        if not (model_package_group_name or model_package_name):
            raise SpecError("register() needs model_package_group_name (a versioned group) or model_package_name.")
        request = model_package_request(
            self, content_types=content_types, response_types=response_types,
            inference_instances=inference_instances, transform_instances=transform_instances,
            model_package_name=model_package_name, model_package_group_name=model_package_group_name,
            image_uri=image_uri, model_metrics=model_metrics, metadata_properties=metadata_properties,
            marketplace_cert=marketplace_cert, approval_status=approval_status, description=description,
            drift_check_baselines=drift_check_baselines, customer_metadata_properties=customer_metadata_properties,
            validation_specification=validation_specification, domain=domain, task=task,
            sample_payload_url=sample_payload_url, framework=framework, framework_version=framework_version)
        record = create_model_package(self.sagemaker_session, request)
        return ModelPackage(role=self.role, model_package_arn=record["ModelPackageArn"],
                            sagemaker_session=self.sagemaker_session)


class FrameworkModel(Model):
    """A model served by a framework image with ``entry_point`` code (SKLearnModel, XGBoostModel, PyTorchModel)."""

    _framework_name = ""

    def __init__(self, model_data: str | None, image_uri: str | None, role: str | None = None,
                 entry_point: str | None = None, source_dir: str | None = None, predictor_cls: Any = None,
                 env: dict[str, str] | None = None, name: str | None = None, framework_version: str | None = None,
                 py_version: str | None = None, **kwargs: Any) -> None:
        self.framework_version, self.py_version = framework_version, py_version
        sess = kwargs.get("sagemaker_session") or Session()
        kwargs["sagemaker_session"] = sess
        if image_uri is None:
            from sluice import image_uris

            image_uri = image_uris.retrieve(self._framework_name, region=sess.boto_region_name,
                                            version=framework_version, py_version=py_version,
                                            image_scope="inference")
        super().__init__(image_uri=image_uri, model_data=model_data, role=role, predictor_cls=predictor_cls, env=env,
                         name=name, source_dir=source_dir, entry_point=entry_point, **kwargs)


class ModelPackage(Model):
    """A registered model version, deployable like a model (SDK v2 ``sagemaker.model.ModelPackage``)."""

    def __init__(self, role: str | None = None, model_data: str | None = None, algorithm_arn: str | None = None,
                 model_package_arn: str | None = None, **kwargs: Any) -> None:
        if not model_package_arn:
            raise SpecError("ModelPackage needs model_package_arn (algorithm packages are not available locally).")
        self.model_package_arn = model_package_arn
        from sluice.model_registry import describe_model_package

        sess = kwargs.get("sagemaker_session") or Session()
        kwargs["sagemaker_session"] = sess
        desc = describe_model_package(sess, model_package_arn)
        container = desc["InferenceSpecification"]["Containers"][0]
        super().__init__(image_uri=container.get("Image"), model_data=container.get("ModelDataUrl"), role=role,
                         env=container.get("Environment"), **kwargs)

    def prepare_container_def(self, instance_type: str | None = None, **kwargs: Any) -> dict[str, Any]:
        container: dict[str, Any] = {"Image": self.image_uri, "Environment": dict(self.env)}
        if self.model_data:
            container["ModelDataUrl"] = self.model_data
        return container
