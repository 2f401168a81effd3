"""Local endpoints: ``CreateEndpoint`` for a recorded Model, as model-server processes on one loopback port.

What :func:`deploy_endpoint` does, in order (everything that can be refused is refused before anything
starts):

1. checks the endpoint name, that the Model exists in the metadata store, the instance quota
   (``check_quota(..., job_kind="endpoint")``: the endpoint's instances plus those of the endpoints that are
   ``Creating`` or ``InService`` must fit), the image's Python environment (plus starlette and uvicorn
   when it is not sluice's own interpreter) and that the model artifact exists;
2. records the endpoint as ``Creating`` (a second endpoint of the same name is refused here), after checking
   the quota again under the quota lock, so two deployments racing for the last instance cannot both start;
3. for each instance ``algo-1 … algo-N``, lays out ``$SLUICE_HOME/endpoints/<name>/<host>/ml`` (bound at
   ``/opt/ml`` by the sandbox) and unpacks ``model.tar.gz`` at ``model/`` (``filter="data"``);
   ``model/code/requirements.txt`` is installed once per content digest and put on ``PYTHONPATH``;
4. starts one ``python -m sluice.serving.worker`` per instance, sandboxed like a job's script, detached
   (new session) so the endpoint outlives the deploying process, all on one free loopback port shared with
   ``SO_REUSEPORT``; output goes to ``$SLUICE_HOME/endpoints/<name>/<host>/output.log``;
5. waits (``wait=True``) until every worker reports its model loaded, then checks ``/ping``. A worker that
   fails to load, exits or is not ready within ``startup_timeout`` stops the others, and the endpoint is
   recorded ``Failed`` with the reason and the worker's last log lines; :class:`ExecutionError` is raised.

The record is ``DescribeEndpoint``-shaped (``EndpointName``, ``EndpointArn``, ``EndpointConfigName``,
``EndpointStatus``, ``FailureReason``, ``CreationTime``, ``LastModifiedTime`` as epoch seconds,
``ProductionVariants``) plus a private ``"Local"``: ``{"Url", "Port", "Pids", "Host", "Instances"}``.
:func:`describe_endpoint` and :func:`list_endpoints` re-check the processes (on the host that runs them):
an ``InService`` endpoint whose workers are gone becomes ``Failed``; a ``Creating`` one (``wait=False``)
becomes ``InService`` or ``Failed`` as its workers report. :func:`delete_endpoint` stops the process
groups, removes the instances' ``ml`` trees (their ``output.log`` stays) and the record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import sys
import tarfile
import time
import urllib.error
import urllib.request
from enum import StrEnum
from pathlib import Path
from typing import Any

from sluice.config import ACCOUNT_ID, Config, current_config
from sluice.errors import ExecutionError, SpecError
from sluice.jobs.instance_types import check_quota, quota_lock
from sluice.jobs.layout import InstanceLayout, host_names
from sluice.runtime.environments import Environment, resolve_image
from sluice.runtime.instance import base_environment, install_deps
from sluice.runtime.sandbox import detect_sandbox
from sluice.serving.defaults import algorithm_mode_env
from sluice.serving.processes import ProcessRef, read_tail, reserve_port, spawn_detached
from sluice.storage import ObjectStore, S3Uri, store_for

__all__ = [
    "DEFAULT_STARTUP_TIMEOUT",
    "ENDPOINT_KIND",
    "EndpointStatus",
    "delete_endpoint",
    "deploy_endpoint",
    "describe_endpoint",
    "endpoint_url",
    "list_endpoints",
]

log = logging.getLogger("sluice.serving")

ENDPOINT_KIND = "Endpoint"
MODEL_KIND = "Model"
VARIANT = "AllTraffic"
#: Seconds every worker has to load its model (the service allows 4 minutes to pass /ping at startup).
DEFAULT_STARTUP_TIMEOUT = 240.0
STOP_GRACE_SECONDS = 5.0
CONTAINER_MODEL_DIR = "/opt/ml/model"
CONTAINER_CODE_DIR = "/opt/ml/model/code"
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_REASON_LIMIT = 4000


class EndpointStatus(StrEnum):
    CREATING = "Creating"
    IN_SERVICE = "InService"
    FAILED = "Failed"
    DELETING = "Deleting"


#: The one transition table: status -> statuses it may move to.
_TRANSITIONS: dict[EndpointStatus, frozenset[EndpointStatus]] = {
    EndpointStatus.CREATING: frozenset({EndpointStatus.IN_SERVICE, EndpointStatus.FAILED, EndpointStatus.DELETING}),
    EndpointStatus.IN_SERVICE: frozenset({EndpointStatus.FAILED, EndpointStatus.DELETING}),
    EndpointStatus.FAILED: frozenset({EndpointStatus.DELETING}),
    EndpointStatus.DELETING: frozenset({EndpointStatus.DELETING}),  # a delete that died halfway may be redone
}


def _transition(record: dict[str, Any], status: EndpointStatus, **fields: Any) -> dict[str, Any]:
    current = EndpointStatus(record["EndpointStatus"])
    if status not in _TRANSITIONS[current]:
        raise SpecError(f"endpoint {record['EndpointName']!r} is {current}; it cannot become {status}.")
    return {**record, "EndpointStatus": str(status), "LastModifiedTime": time.time(), **fields}


# ---- what a deployment needs ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Artifact:
    """Where the model's files come from: one tar(.gz) object, or every object under a prefix."""

    uri: str
    is_prefix: bool = False

    def check(self, store: ObjectStore) -> None:
        target = S3Uri.parse(self.uri)
        if self.is_prefix:
            if not any(True for _ in store.list(target.bucket, target.key)):
                raise SpecError(f"the model data prefix {self.uri} holds no objects; upload the model there first.")
            return
        try:
            store.stat(target.bucket, target.key)
        except Exception as exc:
            raise SpecError(f"the model artifact {self.uri} cannot be read ({exc}); check ModelDataUrl "
                            "(model_data) — it must name an existing model.tar.gz.") from None

    def unpack(self, store: ObjectStore, dest: Path) -> None:
        target = S3Uri.parse(self.uri)
        if self.is_prefix:
            prefix = target.key if not target.key or target.key.endswith("/") else target.key + "/"
            store.download_prefix(target.bucket, prefix, dest)
            return
        with store.open(target.bucket, target.key) as fh, tarfile.open(fileobj=fh, mode="r|*") as tar:
            tar.extractall(dest, filter="data")


def _container(record: dict[str, Any], model_name: str) -> dict[str, Any]:
    container = record.get("PrimaryContainer")
    if container is None:
        containers = record.get("Containers") or []
        if len(containers) != 1:
            raise SpecError(f"model {model_name!r} has {len(containers)} containers; local endpoints serve a "
                            "model with one container (PrimaryContainer).")
        container = containers[0]
    if not container.get("Image"):
        raise SpecError(f"model {model_name!r} names no Image in its PrimaryContainer; create it with image_uri.")
    return container


def _artifact(container: dict[str, Any]) -> _Artifact | None:
    url = container.get("ModelDataUrl")
    if url:
        return _Artifact(str(url))
    source = (container.get("ModelDataSource") or {}).get("S3DataSource")
    if source:
        compressed = source.get("CompressionType", "None") == "Gzip"
        return _Artifact(str(source["S3Uri"]), is_prefix=source.get("S3DataType") == "S3Prefix" and not compressed)
    return None


def _is_foreign(environment: Environment) -> bool:
    """Whether the image runs on another interpreter than sluice's own."""
    return os.path.realpath(environment.python) != os.path.realpath(sys.executable)


def _serving_environment(environment: Environment) -> Environment:
    """The image's environment, which must also run the model server when it is not sluice's interpreter."""
    if not _is_foreign(environment):
        return environment
    extra = ["starlette", "uvicorn"]
    if _sluice_source_root() is None:
        extra.append("sluice")
    return dataclasses.replace(environment, requirements=(*environment.requirements, *extra))


def _sluice_source_root() -> str | None:
    """The directory holding the ``sluice`` package, if it is a source tree (not a site-packages)."""
    root = Path(__file__).resolve().parents[2]
    return None if root.name in ("site-packages", "dist-packages") else str(root)


def _endpoint_arn(name: str, config: Config) -> str:
    return f"arn:aws:sagemaker:{config.storage.region}:{ACCOUNT_ID}:endpoint/{name.lower()}"


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError(f"endpoint name {name!r} is not valid: use 1-63 letters, digits and hyphens, starting and "
                        "ending with a letter or digit (the service's pattern ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}).")
    return name


def _metadata(config: Config) -> Any:
    from sluice.metadata import open_metadata

    return open_metadata(config.database_url)


def _endpoint_root(config: Config, name: str) -> Path:
    return config.home / "endpoints" / name


# ---- deploy -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Plan:
    """A deployment, checked: everything :func:`_start` needs, and nothing started yet."""

    model_name: str
    name: str
    instance_count: int
    instance_type: str
    vcpus: int
    container: dict[str, Any]
    environment: Environment
    artifact: _Artifact | None
    timeout: float
    config: Config


def _plan(model_name: str, name: str, instance_count: int, instance_type: str, config: Config,
          startup_timeout: float | None) -> _Plan:
    """Every check that can refuse the deployment, before anything is recorded or started."""
    _check_name(name)
    metadata = _metadata(config)
    model = metadata.get_resource(MODEL_KIND, model_name)
    if model is None:
        raise SpecError(f'Could not find model "{model_name}": create the model before deploying it '
                        "(Model(...).create(), or Model.deploy() which does both).")
    container = _container(model.record, model_name)
    itype = check_quota(instance_type, instance_count, config, job_kind="endpoint",
                        in_use=_instances_in_use(instance_type, config))
    environment = _serving_environment(resolve_image(container["Image"], config))
    environment.check()
    artifact = _artifact(container)
    if artifact is not None:
        artifact.check(store_for(config))
    existing = metadata.get_resource(ENDPOINT_KIND, name)
    if existing is not None:
        raise SpecError(f'Cannot create already existing endpoint "{_endpoint_arn(name, config)}" '
                        f"({existing.record.get('EndpointStatus')}). Delete it first (sluice endpoints delete "
                        f"{name}), or pick another endpoint_name.")
    timeout = DEFAULT_STARTUP_TIMEOUT if startup_timeout is None else float(startup_timeout)
    return _Plan(model_name, name, instance_count, instance_type, itype.vcpus, container, environment, artifact,
                 timeout, config)


def _instances_in_use(instance_type: str, config: Config) -> dict[str, int]:
    """Instances of ``instance_type`` that endpoints hold now, by endpoint name: those ``Creating`` (their
    instances are starting) or ``InService``, statuses re-checked against their processes first, so an
    endpoint whose workers died holds nothing."""
    held: dict[str, int] = {}
    for record in list_endpoints(config):
        if record.get("EndpointStatus") not in (EndpointStatus.CREATING, EndpointStatus.IN_SERVICE):
            continue
        count = sum(int(v.get("CurrentInstanceCount") or 0) for v in record.get("ProductionVariants") or []
                    if v.get("InstanceType") == instance_type)
        if count:
            held[record["EndpointName"]] = count
    return held


def _initial_record(plan: _Plan, port: int, sandbox: str, layouts: list[InstanceLayout],
                    config_name: str | None) -> dict[str, Any]:
    now = time.time()
    image = plan.container["Image"]
    return {
        "EndpointName": plan.name,
        "EndpointArn": _endpoint_arn(plan.name, plan.config),
        "EndpointConfigName": config_name or plan.name,
        "ProductionVariants": [{
            "VariantName": VARIANT,
            "DeployedImages": [{"SpecifiedImage": image, "ResolvedImage": image}],
            "CurrentWeight": 1.0, "DesiredWeight": 1.0,
            "CurrentInstanceCount": plan.instance_count, "DesiredInstanceCount": plan.instance_count,
            "InstanceType": plan.instance_type, "ModelName": plan.model_name,
        }],
        "EndpointStatus": str(EndpointStatus.CREATING),
        "CreationTime": now,
        "LastModifiedTime": now,
        "Local": {
            "Url": f"http://127.0.0.1:{port}", "Port": port, "Pids": [], "Host": socket.gethostname(),
            "Environment": plan.environment.name, "Sandbox": sandbox,
            "StartupTimeout": plan.timeout, "StartupDeadline": None,  # set when the workers start
            "Deployer": {"Pid": os.getpid(), "StartTicks": ProcessRef.of(os.getpid()).start_ticks},
            "Instances": [{"Host": lay.host, "Pid": None, "StartTicks": None, "Log": str(lay.log_path),
                           "ReadyFile": str(lay.base / "ready.json")} for lay in layouts],
        },
    }


def _start(plan: _Plan, record: dict[str, Any], layouts: list[InstanceLayout], env: dict[str, str],
           procs: list[ProcessRef]) -> None:
    """Lay out every instance's tree, install requirements, start the workers (appended to ``procs``)."""
    store = store_for(plan.config)
    port = int(record["Local"]["Port"])
    shutil.rmtree(_endpoint_root(plan.config, plan.name), ignore_errors=True)  # a deleted namesake's leftovers
    worker_env = _worker_env(plan.container, env, plan.environment, plan.config, plan.name, port, plan.vcpus)
    for layout in layouts:
        layout.create((CONTAINER_MODEL_DIR,))
        if plan.artifact is not None:
            plan.artifact.unpack(store, layout.host_path(CONTAINER_MODEL_DIR))
        _unpack_submit_directory(plan.container, store, layout, worker_env)
    deps = _install_requirements(layouts[0].host_path(CONTAINER_CODE_DIR), plan.environment, plan.config)
    paths = [CONTAINER_CODE_DIR, *([str(deps)] if deps else [])]
    if _is_foreign(plan.environment) and (source := _sluice_source_root()):
        paths.append(source)
    if worker_env.get("PYTHONPATH"):
        paths.append(worker_env["PYTHONPATH"])
    worker_env["PYTHONPATH"] = os.pathsep.join(paths)
    sandbox = detect_sandbox(plan.config.sandbox)
    command = [plan.environment.python, "-m", "sluice.serving.worker"]
    for layout, info in zip(layouts, record["Local"]["Instances"], strict=True):
        instance_env = {**worker_env, "SLUICE_READY_FILE": info["ReadyFile"], "SLUICE_LOG_PATH": info["Log"]}
        argv, wrapped_env = sandbox.wrap(list(command), layout, instance_env)
        proc = spawn_detached(argv, wrapped_env, layout.root, layout.log_path)
        procs.append(proc)
        info.update(Pid=proc.pid, StartTicks=proc.start_ticks)
    record["Local"]["Pids"] = [p.pid for p in procs]
    record["Local"]["StartupDeadline"] = time.time() + plan.timeout


def deploy_endpoint(
    model_name: str, endpoint_name: str, instance_count: int, instance_type: str, config: Config | None = None,
    *, env: dict[str, str] | None = None, wait: bool = True, startup_timeout: float | None = None,
    endpoint_config_name: str | None = None,
) -> dict[str, Any]:
    """Serve Model ``model_name`` as endpoint ``endpoint_name``; returns the Describe record (+ ``Local``).

    ``env`` is added to the model's container environment. ``wait=False`` returns once the workers are
    started (status ``Creating``); :func:`describe_endpoint` then reports ``InService`` or ``Failed``.
    ``startup_timeout`` (default :data:`DEFAULT_STARTUP_TIMEOUT`) bounds each worker's model loading.
    """
    config = config if config is not None else current_config()
    plan = _plan(model_name, endpoint_name, instance_count, instance_type, config, startup_timeout)
    metadata = _metadata(config)
    root = _endpoint_root(config, endpoint_name)
    layouts = [InstanceLayout(host, i, root / host) for i, host in enumerate(host_names(instance_count))]
    reservation = reserve_port()  # held until the workers listen, so nothing else takes the port meanwhile
    try:
        sandbox = str(detect_sandbox(config.sandbox).kind)
        record = _initial_record(plan, int(reservation.getsockname()[1]), sandbox, layouts, endpoint_config_name)
        with quota_lock(config):
            check_quota(instance_type, instance_count, config, job_kind="endpoint",
                        in_use=_instances_in_use(instance_type, config))
            metadata.create_resource(ENDPOINT_KIND, endpoint_name, record)
        procs: list[ProcessRef] = []
        try:
            _start(plan, record, layouts, env or {}, procs)
        except Exception as exc:
            for proc in procs:
                proc.stop(STOP_GRACE_SECONDS)
            _fail(metadata, record, f"the endpoint's instances could not be started: {type(exc).__name__}: {exc}")
            raise
        metadata.update_resource(ENDPOINT_KIND, endpoint_name, record)
        if not wait:
            return record
        record = _await_ready(record)
    finally:
        reservation.close()
    if record["EndpointStatus"] != EndpointStatus.IN_SERVICE:
        for proc in procs:
            proc.stop(STOP_GRACE_SECONDS)
        metadata.update_resource(ENDPOINT_KIND, endpoint_name, record)
        raise ExecutionError(f"Error hosting endpoint {endpoint_name}: Failed. Reason: {record['FailureReason']}")
    metadata.update_resource(ENDPOINT_KIND, endpoint_name, record)
    return record


def _worker_env(
    container: dict[str, Any], env: dict[str, str], environment: Environment, config: Config, name: str, port: int,
    vcpus: int,
) -> dict[str, str]:
    """The worker's environment: sluice's, the model's container environment, the deploy ``env``, the wiring.

    A model with no inference code on an image with a built-in algorithm also gets that algorithm's default
    Accept (see :func:`~sluice.serving.defaults.algorithm_mode_env`)."""
    base = base_environment(config.home, environment, drop=("SAGEMAKER_BASE_DIR", "SLUICE_OPT_ML"))
    base["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(max(1, min(vcpus, os.cpu_count() or 1)))
    base["SAGEMAKER_REGION"] = config.storage.region
    model_env = {str(k): str(v) for k, v in {**(container.get("Environment") or {}), **env}.items()}
    base.update(model_env)
    base.update(algorithm_mode_env(environment.name, model_env))
    base.update(SAGEMAKER_BIND_TO_PORT=str(port), SLUICE_ENDPOINT_NAME=name, SLUICE_FRAMEWORK=environment.name)
    return base


def _unpack_submit_directory(container: dict[str, Any], store: ObjectStore, layout: InstanceLayout,
                             env: dict[str, str]) -> None:
    """A framework model that points ``SAGEMAKER_SUBMIT_DIRECTORY`` at a ``sourcedir.tar.gz`` (not repacked):
    unpack it into ``/opt/ml/model/code``, which is where the model server looks."""
    submit = (container.get("Environment") or {}).get("SAGEMAKER_SUBMIT_DIRECTORY", "")
    if not str(submit).startswith("s3://"):
        return
    dest = layout.host_path(CONTAINER_CODE_DIR)
    dest.mkdir(parents=True, exist_ok=True)
    uri = S3Uri.parse(str(submit))
    try:
        with store.open(uri.bucket, uri.key) as fh, tarfile.open(fileobj=fh, mode="r|*") as tar:
            tar.extractall(dest, filter="data")
    except Exception as exc:
        raise SpecError(f"SAGEMAKER_SUBMIT_DIRECTORY {submit} cannot be unpacked ({exc}); it must be a "
                        "sourcedir.tar.gz in the store.") from None
    env["SAGEMAKER_SUBMIT_DIRECTORY"] = CONTAINER_CODE_DIR


def _install_requirements(code_dir: Path, environment: Environment, config: Config) -> Path | None:
    reqs = code_dir / "requirements.txt"
    if not reqs.is_file():
        return None
    digest = hashlib.sha256(reqs.read_bytes()).hexdigest()[:16]
    return install_deps(environment.python, ["-r", str(reqs)], config.home / "deps", digest)


# ---- readiness ----------------------------------------------------------------------------------
def _read_ready(path: str) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _instance_failure(info: dict[str, Any], what: str) -> str:
    tail = read_tail(Path(info["Log"]))
    lines = "\n".join(tail) if tail else "(no output)"
    reason = f"{info['Host']}: {what.rstrip('.')}. Last lines of its log ({info['Log']}):\n{lines}"
    return reason if len(reason) <= _REASON_LIMIT else reason[:200] + "\n...\n" + reason[-(_REASON_LIMIT - 210):]


def _instances(record: dict[str, Any]) -> list[tuple[dict[str, Any], ProcessRef | None]]:
    return [(info, ProcessRef(info["Pid"], info.get("StartTicks")) if info.get("Pid") else None)
            for info in record["Local"]["Instances"]]


def _check_creating(record: dict[str, Any]) -> tuple[bool, str | None]:
    """(all ready, failure reason) for an endpoint whose workers are starting."""
    local = record["Local"]
    instances = _instances(record)
    if local.get("StartupDeadline") is None or any(proc is None for _, proc in instances):
        # still unpacking or installing, in the deploying process: pending while that process lives
        deployer = local.get("Deployer") or {}
        if deployer.get("Pid") and ProcessRef(deployer["Pid"], deployer.get("StartTicks")).alive():
            return False, None
        return False, (f"the process that deployed the endpoint (pid {deployer.get('Pid')}) ended before it "
                       "started the endpoint's instances; delete the endpoint and deploy it again.")
    pending = []
    for info, proc in instances:
        state = _read_ready(info["ReadyFile"])
        if state is not None and state.get("status") == "ready":
            continue
        if state is not None and state.get("status") == "failed":
            return False, _instance_failure(info, f"the model server could not load the model: {state.get('reason')}")
        assert proc is not None
        if not proc.alive():
            code = proc.exit_code()
            how = f" (exit code {code})" if code is not None else ""
            return False, _instance_failure(info, f"the model server exited{how} before its model was loaded")
        pending.append(info)
    if pending and time.time() > local["StartupDeadline"]:
        return False, _instance_failure(
            pending[0], f"the model server did not load its model within the startup timeout "
            f"({local.get('StartupTimeout', 0):.0f} s); still loading: {[i['Host'] for i in pending]}")
    return not pending, None


def _ping(url: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=5) as answer:
            return None if answer.status == 200 else f"/ping answered {answer.status}"
    except urllib.error.HTTPError as exc:
        return f"/ping answered {exc.code}: {exc.read().decode('utf-8', 'replace').strip()[:300]}"
    except OSError as exc:
        return f"/ping failed: {exc}"


def _await_ready(record: dict[str, Any]) -> dict[str, Any]:
    interval = 0.02
    while True:
        ready, reason = _check_creating(record)
        if reason is not None:
            return _transition(record, EndpointStatus.FAILED, FailureReason=reason)
        if ready:
            problem = _ping(record["Local"]["Url"])
            if problem is not None:
                return _transition(record, EndpointStatus.FAILED,
                                   FailureReason=f"every worker loaded its model, but {problem}")
            return _transition(record, EndpointStatus.IN_SERVICE)
        time.sleep(interval)
        interval = min(interval * 1.5, 0.25)


def _fail(metadata: Any, record: dict[str, Any], reason: str) -> dict[str, Any]:
    """Record ``Failed``; instances still running are stopped, since a Failed endpoint serves nothing."""
    record = _transition(record, EndpointStatus.FAILED, FailureReason=reason)
    metadata.update_resource(ENDPOINT_KIND, record["EndpointName"], record)
    if (record.get("Local") or {}).get("Host") == socket.gethostname():
        for _, proc in _instances(record):
            if proc is not None:
                proc.stop(STOP_GRACE_SECONDS)
    return record


# ---- describe, list, delete --------------------------------------------------------------------
def _refresh(metadata: Any, record: dict[str, Any]) -> dict[str, Any]:
    """Bring the record up to date with the processes (only on the host that runs them)."""
    local = record.get("Local") or {}
    if local.get("Host") != socket.gethostname():
        return record
    status = EndpointStatus(record["EndpointStatus"])
    if status is EndpointStatus.CREATING:
        ready, reason = _check_creating(record)
        if reason is not None:
            return _fail(metadata, record, reason)
        if ready:
            record = _transition(record, EndpointStatus.IN_SERVICE)
            metadata.update_resource(ENDPOINT_KIND, record["EndpointName"], record)
        return record
    if status is EndpointStatus.IN_SERVICE:
        dead = [(info, proc) for info, proc in _instances(record) if proc is None or not proc.alive()]
        if dead:
            info, proc = dead[0]
            code = proc.exit_code() if proc is not None else None
            how = f" with exit code {code}" if code is not None else ""
            hosts = ", ".join(i["Host"] for i, _ in dead)
            return _fail(metadata, record, _instance_failure(
                info, f"the model server process (pid {info['Pid']}) has exited{how}; instances gone: {hosts}. "
                "Delete the endpoint and deploy it again"))
    return record


def _get(metadata: Any, name: str) -> dict[str, Any]:
    row = metadata.get_resource(ENDPOINT_KIND, name)
    if row is None:
        raise SpecError(f'Could not find endpoint "{name}" (it may have been deleted already); '
                        "`sluice endpoints list` shows the endpoints there are.")
    return row.record


def describe_endpoint(name: str, config: Config | None = None) -> dict[str, Any]:
    """The endpoint's Describe record (+ ``Local``), its status re-checked against its processes."""
    config = config if config is not None else current_config()
    metadata = _metadata(config)
    return _refresh(metadata, _get(metadata, name))


def list_endpoints(config: Config | None = None, name_contains: str | None = None) -> list[dict[str, Any]]:
    """Every endpoint's Describe record, oldest first, statuses re-checked."""
    config = config if config is not None else current_config()
    metadata = _metadata(config)
    rows = metadata.list_resources(ENDPOINT_KIND)
    return [_refresh(metadata, r.record) for r in rows if not name_contains or name_contains in r.name]


def delete_endpoint(name: str, config: Config | None = None) -> None:
    """Stop the endpoint's workers and forget it. An unknown name raises :class:`SpecError` ("Could not find
    endpoint"), so a caller that wants idempotence can catch exactly that."""
    config = config if config is not None else current_config()
    metadata = _metadata(config)
    record = _transition(_get(metadata, name), EndpointStatus.DELETING)
    metadata.update_resource(ENDPOINT_KIND, name, record)
    if (record.get("Local") or {}).get("Host") == socket.gethostname():
        for _, proc in _instances(record):
            if proc is not None:
                proc.stop(STOP_GRACE_SECONDS)
        root = _endpoint_root(config, name)
        for info in record["Local"]["Instances"]:
            shutil.rmtree(root / info["Host"] / "ml", ignore_errors=True)
            Path(info["ReadyFile"]).unlink(missing_ok=True)
    metadata.delete_resource(ENDPOINT_KIND, name)


def endpoint_url(name: str, config: Config | None = None) -> str:
    """The base URL of an ``InService`` endpoint; a clear error for any other state."""
    config = config if config is not None else current_config()
    metadata = _metadata(config)
    row = metadata.get_resource(ENDPOINT_KIND, name)
    if row is None:
        raise SpecError(f"Endpoint {name} of account {ACCOUNT_ID} not found. `sluice endpoints list` shows the "
                        "endpoints there are.")
    record = row.record
    if record["EndpointStatus"] != EndpointStatus.IN_SERVICE:
        record = _refresh(metadata, record)
    if record["EndpointStatus"] != EndpointStatus.IN_SERVICE:
        reason = f": {record['FailureReason']}" if record.get("FailureReason") else ""
        raise ExecutionError(f"Endpoint {name} is {record['EndpointStatus']}, not InService{reason}")
    return str(record["Local"]["Url"])
