"""``sagemaker.predictor.Predictor``: send data to a (local) endpoint and get predictions back.

Names, arguments and behaviour follow the SageMaker Python SDK v2: the serializer turns ``data`` into the
request body and names its ``Content-Type``; the deserializer names ``Accept`` and turns the response into
a Python object. Requests go over one kept-alive loopback HTTP connection per thread, on the SageMaker
Runtime's wire path (:mod:`sluice.serving.client`), so a prediction costs one round trip. An error the model
answers is raised as :class:`ModelError`; an endpoint that is not ``InService`` as ``ExecutionError``.
"""

from __future__ import annotations

import abc
from typing import Any

from sluice.deserializers import BaseDeserializer, BytesDeserializer
from sluice.errors import SpecError
from sluice.serializers import BaseSerializer, IdentitySerializer
from sluice.serving.client import Body, ModelError, RuntimeClient

__all__ = ["ModelError", "Predictor", "PredictorBase"]

_IDENTITY = IdentitySerializer()
_BYTES = BytesDeserializer()


class PredictorBase(abc.ABC):
    """An object that encapsulates a deployed model."""

    @abc.abstractmethod
    def predict(self, *args: Any, **kwargs: Any) -> Any:
        """Perform inference on the provided data and return a prediction."""

    @abc.abstractmethod
    def delete_predictor(self, *args: Any, **kwargs: Any) -> None:
        """Destroy resources associated with this predictor."""

    @property
    @abc.abstractmethod
    def content_type(self) -> str:
        """The MIME type of the data sent to the inference server."""

    @property
    @abc.abstractmethod
    def accept(self) -> tuple[str, ...]:
        """The content type(s) expected from the inference server."""


class Predictor(PredictorBase):
    """Make prediction requests to a sluice endpoint, as ``sagemaker.predictor.Predictor`` does to SageMaker."""

    def __init__(
        self,
        endpoint_name: str,
        sagemaker_session: Any = None,
        serializer: BaseSerializer = _IDENTITY,
        deserializer: BaseDeserializer = _BYTES,
        component_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        for removed in ("content_type", "accept"):
            if removed in kwargs:
                raise SpecError(f"Predictor no longer takes {removed!r} (as in SageMaker SDK v2): pass a serializer "
                                "and a deserializer, whose content types it uses.")
        if "endpoint" in kwargs:  # the SDK's renamed argument
            endpoint_name = kwargs.pop("endpoint")
        if sagemaker_session is None:
            from sluice.session import Session

            sagemaker_session = Session()
        self.endpoint_name = endpoint_name
        self.sagemaker_session = sagemaker_session
        self.serializer = serializer
        self.deserializer = deserializer
        self.component_name = component_name
        self._model_names: list[str] | None = None
        self._client = RuntimeClient(endpoint_name, self._url)

    # ---- the SDK surface --------------------------------------------------------------------
    @property
    def content_type(self) -> str:
        return self.serializer.CONTENT_TYPE

    @property
    def accept(self) -> tuple[str, ...]:
        return self.deserializer.ACCEPT

    @property
    def endpoint(self) -> str:
        """Deprecated alias of :attr:`endpoint_name`, kept as the SDK keeps it."""
        return self.endpoint_name

    def predict(
        self,
        data: Any,
        initial_args: dict[str, Any] | None = None,
        target_model: str | None = None,
        target_variant: str | None = None,
        inference_id: str | None = None,
        custom_attributes: str | None = None,
        component_name: str | None = None,
        target_container_hostname: str | None = None,
    ) -> Any:
        """Serialize ``data``, invoke the endpoint, deserialize the response."""
        args = dict(initial_args) if initial_args else {}
        if "ContentType" not in args:
            ct = self.content_type
            args["ContentType"] = ct if isinstance(ct, str) else ", ".join(ct)
        if "Accept" not in args:
            accept = self.accept
            args["Accept"] = accept if isinstance(accept, str) else ", ".join(accept)
        for key, value in (("TargetModel", target_model), ("TargetVariant", target_variant),
                           ("InferenceId", inference_id), ("CustomAttributes", custom_attributes),
                           ("InferenceComponentName", component_name or self.component_name),
                           ("TargetContainerHostname", target_container_hostname)):
            if value:
                args[key] = value
        body = args.pop("Body", None)
        if body is None:
            body = self.serializer.serialize(data)
        response = self._client.invoke(body, **args)
        return self.deserializer.deserialize(Body(response.body), response.content_type)

    def delete_endpoint(self, delete_endpoint_config: bool = True) -> None:
        """Stop the endpoint's processes and forget it (its config goes with it)."""
        from sluice.serving.endpoints import delete_endpoint

        self._get_model_names()  # remembered, so delete_model() still works afterwards
        self._client.close()
        delete_endpoint(self.endpoint_name, self.sagemaker_session.config)

    def delete_predictor(self, wait: bool = False) -> None:
        self.delete_endpoint()

    def delete_model(self) -> None:
        """Delete the Model(s) this endpoint serves from the record (the endpoint keeps running)."""
        failed = [name for name in self._get_model_names()
                  if not self.sagemaker_session.metadata.delete_resource("Model", name)]
        if failed:
            raise SpecError(f"One or more models cannot be deleted: {', '.join(failed)} (not found; already deleted?).")

    def update_endpoint(self, *args: Any, **kwargs: Any) -> None:
        raise SpecError("update_endpoint is not supported by local endpoints: delete the endpoint and deploy the "
                        "model again (sluice endpoints delete NAME).")

    # ---- internals --------------------------------------------------------------------------
    def _url(self) -> str:
        from sluice.serving.endpoints import endpoint_url

        return endpoint_url(self.endpoint_name, self.sagemaker_session.config)

    def _get_model_names(self) -> list[str]:
        if self._model_names is None:
            from sluice.serving.endpoints import describe_endpoint

            record = describe_endpoint(self.endpoint_name, self.sagemaker_session.config)
            self._model_names = [v["ModelName"] for v in record.get("ProductionVariants", []) if v.get("ModelName")]
        return self._model_names

    def __repr__(self) -> str:
        return (f"Predictor(endpoint_name={self.endpoint_name!r}, serializer={type(self.serializer).__name__}(), "
                f"deserializer={type(self.deserializer).__name__}())")
