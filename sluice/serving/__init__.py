"""Model serving: the inference toolkit's model server, local endpoints, and batch transform.

The pieces, each usable alone:

- :mod:`sluice.serving.handlers` — the ``inference.py`` handler contract (``model_fn``, ``input_fn``,
  ``predict_fn``, ``output_fn`` or ``transform_fn``, with an optional trailing ``context``);
- :mod:`sluice.serving.defaults` — the default handlers and content-type codecs used when
  ``inference.py`` leaves a handler out (scikit-learn, XGBoost, TorchScript);
- :mod:`sluice.serving.app` — the HTTP surface (``/ping``, ``/invocations``, ``/execution-parameters``
  and the SageMaker Runtime wire path ``/endpoints/{name}/invocations``);
- :mod:`sluice.serving.worker` — ``python -m sluice.serving.worker``, the model server process;
- :mod:`sluice.serving.endpoints` — local endpoints: one sandboxed worker per instance, sharing a port;
- :mod:`sluice.serving.client` — the InvokeEndpoint client behind :class:`sluice.predictor.Predictor`.

Nothing here is imported by ``import sluice``; starlette and uvicorn load only in the worker.
"""
