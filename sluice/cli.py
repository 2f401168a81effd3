"""The ``sluice`` command: read and control the record of jobs, pipelines and endpoints from any process.

Errors: a :class:`~sluice.errors.SluiceError` (bad input, a refused action) prints ``error: ...`` and exits 2;
an unknown name prints ``Error: ...`` and exits 1. ``sluice pipeline run`` also exits 1 when the execution
does not succeed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from sluice.errors import SluiceError
from sluice.jobs.status import JobStatus

__all__ = ["main"]

_KINDS = {"processing": "ProcessingJob", "training": "TrainingJob", "transform": "TransformJob",
          "tuning": "HyperParameterTuningJob"}


def _session():
    from sluice.session import Session

    return Session()


def _kind_of(sess: Any, name: str, kind: str | None) -> str:
    if kind:
        return _KINDS[kind]
    for k in _KINDS.values():
        if sess.metadata.get_job(k, name) is not None:
            return k
    raise click.ClickException(f"no job named {name!r}; `sluice jobs list` shows the jobs there are.")


def _fmt_time(value: Any) -> str:
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return str(value or "")


class _RefusedError(click.ClickException):
    """A SluiceError on its way out: ``error: <message>`` on stderr, exit status 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


class _Group(click.Group):
    """The top-level group: turns a SluiceError from any command into :class:`_RefusedError`, so the exit
    status is the same under the console script and under ``click.testing.CliRunner``."""

    def invoke(self, ctx: click.Context) -> Any:
        from sluice.errors import SluiceError

        try:
            return super().invoke(ctx)
        except SluiceError as exc:
            raise _RefusedError(str(exc)) from exc


@click.group(cls=_Group)
@click.version_option(package_name="sluice")
def main() -> None:
    """sluice: SageMaker jobs and pipelines on one machine or on Ray."""


@main.group()
def jobs() -> None:
    """List, describe, read the logs of and stop jobs."""


_kind_option = click.option("--kind", type=click.Choice(sorted(_KINDS)), default=None, help="Job type.")


@jobs.command("list")
@_kind_option
@click.option("--status", default=None, help="Only jobs in this status (InProgress, Completed, Failed, Stopped).")
@click.option("--name-contains", default=None, help="Only jobs whose name contains this.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_jobs(kind: str | None, status: str | None, name_contains: str | None, limit: int, as_json: bool) -> None:
    """Most recent jobs first (pipeline executions are listed by `sluice pipeline executions`)."""
    sess = _session()
    rows = _job_rows(sess, kind, status, name_contains, limit)
    if any(not JobStatus(r.status).is_terminal for r in rows):  # notice jobs whose driving process died
        for r in rows:
            if not JobStatus(r.status).is_terminal:
                sess._describe(r.kind, r.name)
        rows = _job_rows(sess, kind, status, name_contains, limit)
    if as_json:
        click.echo(json.dumps([{"Name": r.name, "Kind": r.kind, "Status": r.status,
                                "CreationTime": r.created_at} for r in rows], indent=2))
        return
    from rich.console import Console
    from rich.table import Column, Table

    table = Table(Column("name", no_wrap=True), "kind", "status", "created (UTC)", "reason")
    for r in rows:
        table.add_row(r.name, r.kind, r.status, _fmt_time(r.created_at), (r.record.get("FailureReason") or "")[:60])
    Console().print(table)


def _job_rows(sess: Any, kind: str | None, status: str | None, name_contains: str | None, limit: int) -> list[Any]:
    """The newest ``limit`` jobs of the job kinds (one kind, or all four merged): the ``jobs`` table also holds
    pipeline executions, which have statuses of their own and are not jobs to describe, log or stop."""
    kinds = [_KINDS[kind]] if kind else list(_KINDS.values())
    rows = [r for k in kinds for r in sess.metadata.list_jobs(k, status, name_contains, limit)]
    return sorted(rows, key=lambda r: r.created_at, reverse=True)[:limit]


@jobs.command()
@click.argument("name")
@_kind_option
def describe(name: str, kind: str | None) -> None:
    """The Describe*-shaped record of a job, as JSON."""
    sess = _session()
    record = sess._describe(_kind_of(sess, name, kind), name)
    click.echo(json.dumps(record, indent=2, default=str))


@jobs.command()
@click.argument("name")
@_kind_option
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the job ends.")
def logs(name: str, kind: str | None, follow: bool) -> None:
    """Every instance's log lines, prefixed by host."""
    from sluice.runtime.logs import follow_logs

    sess = _session()
    follow_logs(sess, _kind_of(sess, name, kind), name, wait=follow)


@jobs.command()
@click.argument("name")
@_kind_option
def stop(name: str, kind: str | None) -> None:
    """Ask a running job to stop; its driver ends every instance and records Stopped."""
    sess = _session()
    sess._stop(_kind_of(sess, name, kind), name)
    click.echo(f"stop requested for {name}")


@main.group()
def models() -> None:
    """Models, and the model registry: groups, versions, approval."""


def _table(columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Column, Table

    table = Table(Column(columns[0], no_wrap=True), *columns[1:])
    for row in rows:
        table.add_row(*row)
    Console().print(table)


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_models(as_json: bool) -> None:
    """Models recorded with Model.create() (or by deploy/transformer)."""
    records = [r.record for r in _session().metadata.list_resources("Model")]
    if as_json:
        click.echo(json.dumps(records, indent=2, default=str))
        return
    _table(["name", "image", "model data", "created (UTC)"],
           [[r["ModelName"], r["PrimaryContainer"].get("Image", ""), r["PrimaryContainer"].get("ModelDataUrl", ""),
             _fmt_time(r.get("CreationTime"))] for r in records])


@models.command()
def groups() -> None:
    """Model package groups."""
    from sluice.model_registry import list_model_package_groups, list_model_packages

    sess = _session()
    _table(["group", "versions", "created (UTC)"],
           [[g["ModelPackageGroupName"], str(len(list_model_packages(sess, g["ModelPackageGroupName"]))),
             _fmt_time(g.get("CreationTime"))] for g in list_model_package_groups(sess)])


@models.command()
@click.argument("group")
@click.option("--status", type=click.Choice(["PendingManualApproval", "Approved", "Rejected"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def packages(group: str, status: str | None, as_json: bool) -> None:
    """The versions of a model package group, oldest first."""
    from sluice.model_registry import describe_model_package_group, list_model_packages

    sess = _session()
    describe_model_package_group(sess, group)
    records = list_model_packages(sess, group, status)
    if as_json:
        click.echo(json.dumps(records, indent=2, default=str))
        return
    _table(["version", "approval", "arn", "created (UTC)"],
           [[str(r["ModelPackageVersion"]), r["ModelApprovalStatus"], r["ModelPackageArn"],
             _fmt_time(r.get("CreationTime"))] for r in records])


@models.command("describe")
@click.argument("ref")
def describe_package(ref: str) -> None:
    """A model (by name) or a model package version (GROUP/N or its ARN), as JSON."""
    from sluice.model_registry import describe_model_package

    sess = _session()
    row = sess.metadata.get_resource("Model", ref)
    record = row.record if row is not None else describe_model_package(sess, ref)
    click.echo(json.dumps(record, indent=2, default=str))


def _set_approval(ref: str, status: str, description: str | None) -> None:
    from sluice.model_registry import update_approval_status

    record = update_approval_status(_session(), ref, status, description)
    click.echo(f"{record['ModelPackageArn']}: {record['ModelApprovalStatus']}")


@models.command()
@click.argument("ref")
@click.option("--description", default=None, help="Why (recorded as ApprovalDescription).")
def approve(ref: str, description: str | None) -> None:
    """Set a version (GROUP/N or its ARN) to Approved."""
    _set_approval(ref, "Approved", description)


@models.command()
@click.argument("ref")
@click.option("--description", default=None, help="Why (recorded as ApprovalDescription).")
def reject(ref: str, description: str | None) -> None:
    """Set a version (GROUP/N or its ARN) to Rejected."""
    _set_approval(ref, "Rejected", description)


@main.group()
def endpoints() -> None:
    """Local endpoints: list, describe and delete them."""


@endpoints.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_endpoints_cmd(as_json: bool) -> None:
    """Every endpoint, oldest first, its status re-checked against its processes."""
    from sluice.serving.endpoints import list_endpoints

    records = list_endpoints(_session().config)
    if as_json:
        click.echo(json.dumps(records, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "status", "url", "instances", "model", "created (UTC)", "reason")
    for r in records:
        variant = (r.get("ProductionVariants") or [{}])[0]
        table.add_row(r["EndpointName"], r["EndpointStatus"], (r.get("Local") or {}).get("Url", ""),
                      f"{variant.get('CurrentInstanceCount', '')} x {variant.get('InstanceType', '')}",
                      variant.get("ModelName", ""), _fmt_time(r.get("CreationTime")),
                      (r.get("FailureReason") or "").splitlines()[0][:60] if r.get("FailureReason") else "")
    Console().print(table)


@endpoints.command("describe")
@click.argument("name")
def describe_endpoint_cmd(name: str) -> None:
    """The DescribeEndpoint-shaped record of an endpoint (plus its local URL and processes), as JSON."""
    from sluice.serving.endpoints import describe_endpoint

    click.echo(json.dumps(describe_endpoint(name, _session().config), indent=2, default=str))


@endpoints.command("delete")
@click.argument("name")
def delete_endpoint_cmd(name: str) -> None:
    """Stop an endpoint's model servers and forget it (its logs stay under the sluice home)."""
    from sluice.serving.endpoints import delete_endpoint

    delete_endpoint(name, _session().config)
    click.echo(f"deleted endpoint {name}")


# ---- pipelines ---------------------------------------------------------------------------------------------

@main.group()
def pipeline() -> None:
    """Pipelines and their executions: list, describe, run, read the steps of and stop them."""


def _pipeline_row(sess: Any, name: str) -> Any:
    row = sess.metadata.get_resource("Pipeline", name)
    if row is None:
        raise click.ClickException(f"no pipeline named {name!r}; `sluice pipeline list` shows the pipelines there "
                                   "are, and `sluice pipeline run FILE.json` records one.")
    return row


def _execution(sess: Any, ref: str) -> Any:
    """The execution with this ARN or id; an unknown one is refused as an unknown name (exit 1)."""
    from sluice.workflow.execution import EXECUTION_KIND, open_execution, parse_execution_arn

    if sess.metadata.get_job(EXECUTION_KIND, parse_execution_arn(ref)) is None:
        raise click.ClickException(f"no pipeline execution {ref!r}; `sluice pipeline executions` lists them "
                                   "(give the ARN or the id at its end).")
    return open_execution(sess.config, ref, session=sess)


def _text_table(columns: list[str], rows: list[list[str]], wrap: str | None = None) -> None:
    """A table whose cells are shown as written (no rich markup); only the ``wrap`` column may wrap."""
    from rich.table import Column, Table
    from rich.text import Text

    table = Table(*(Column(c, no_wrap=c != wrap) for c in columns))
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    _print(table)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _print(*renderables: Any) -> None:
    from rich.console import Console

    Console().print(*renderables)


@pipeline.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print ListPipelines-shaped JSON instead of a table.")
def list_pipelines_cmd(as_json: bool) -> None:
    """Recorded pipelines, oldest first, with their latest execution."""
    from sluice.workflow.execution import list_pipelines, parse_execution_arn

    summaries = list_pipelines(_session().config)
    if as_json:
        _echo_json({"PipelineSummaries": summaries})
        return
    _text_table(["name", "latest execution", "status", "created (UTC)", "modified (UTC)"],
                [[s["PipelineName"], parse_execution_arn(s["LatestExecutionArn"] or ""),
                  s["LatestExecutionStatus"] or "", _fmt_time(s["CreationTime"]), _fmt_time(s["LastModifiedTime"])]
                 for s in summaries])


def _describe_pipeline(row: Any) -> dict[str, Any]:
    """``DescribePipeline``: the stored record with the row's times."""
    record = {k: v for k, v in row.record.items() if v is not None}
    record["CreationTime"] = dt.datetime.fromtimestamp(row.created_at, dt.UTC)
    record["LastModifiedTime"] = dt.datetime.fromtimestamp(row.updated_at, dt.UTC)
    return record


@pipeline.command("describe")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the DescribePipeline record (definition included).")
def describe_pipeline_cmd(name: str, as_json: bool) -> None:
    """A pipeline: its parameters and its steps with their types and dependencies."""
    from sluice.workflow.execution import list_executions, parse_execution_arn
    from sluice.workflow.graph import parse_definition

    sess = _session()
    record = _describe_pipeline(_pipeline_row(sess, name))
    if as_json:
        _echo_json(record)
        return
    definition = parse_definition(record["PipelineDefinition"])
    latest = list_executions(sess.config, name, limit=1)
    header = [("pipeline", name), ("arn", record.get("PipelineArn")), ("role", record.get("RoleArn")),
              ("description", record.get("PipelineDescription")),
              ("parallelism", (record.get("ParallelismConfiguration") or {}).get("MaxParallelExecutionSteps")),
              ("created (UTC)", _fmt_time(record["CreationTime"])),
              ("modified (UTC)", _fmt_time(record["LastModifiedTime"])),
              ("latest execution", " ".join([parse_execution_arn(latest[0]["PipelineExecutionArn"]),
                                             str(latest[0]["PipelineExecutionStatus"])]) if latest else None)]
    for key, value in header:
        if value is not None:
            click.echo(f"{key + ':':<18}{value}")
    _print(*_definition_tables(definition))


def _definition_tables(definition: Any) -> tuple[Any, Any]:
    """A parsed definition as two tables: its parameters, and its steps (branches included) with their types,
    dependencies (every kind of edge), branch, cache window and number of retry policies."""
    from rich.table import Column, Table
    from rich.text import Text

    from sluice.workflow.graph import dependencies

    params = Table(Column("parameter", no_wrap=True), "type", "default", "enum values", title="parameters",
                   title_justify="left")
    for spec in definition.parameters.values():
        params.add_row(Text(spec.name), str(spec.type),
                       Text("(required)" if spec.required else json.dumps(spec.default_value)),
                       Text(", ".join(spec.enum_values or ())))
    steps = Table(Column("step", no_wrap=True), "type", "depends on", "branch", "cache", "retry policies",
                  title="steps", title_justify="left")
    deps = dependencies(definition.graph)
    for name, spec in definition.graph.items():
        branch = f"{spec.branch_of[1]} of {spec.branch_of[0]}" if spec.branch_of else ""
        cache = ""
        if spec.cache_config is not None and spec.cache_config.enabled:
            cache = spec.cache_config.expire_after or "on"
        steps.add_row(Text(name), str(spec.type), Text(", ".join(sorted(deps.get(name, ())))), Text(branch), cache,
                      str(len(spec.retry_policies) or ""))
    return params, steps


@pipeline.command("executions")
@click.argument("name", required=False)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print ListPipelineExecutions-shaped JSON instead of a table.")
def executions_cmd(name: str | None, limit: int, as_json: bool) -> None:
    """Executions newest first, of one pipeline or of all. An execution whose driving process died shows
    Failed, with that as its reason."""
    from sluice.workflow.execution import list_executions, parse_execution_arn

    sess = _session()
    summaries = list_executions(sess.config, name, limit=limit)
    if name is not None and not summaries:
        _pipeline_row(sess, name)  # an unknown pipeline is an error; a known one may have no execution yet
    if as_json:
        _echo_json({"PipelineExecutionSummaries": summaries})
        return
    _text_table(["execution", "pipeline", "status", "started (UTC)", "reason"],
                [[parse_execution_arn(s["PipelineExecutionArn"]), s.get("PipelineName") or "",
                  s["PipelineExecutionStatus"] or "", _fmt_time(s.get("StartTime")),
                  (s.get("PipelineExecutionFailureReason") or "").strip().split("\n")[0]] for s in summaries],
                wrap="reason")


@pipeline.command("steps")
@click.argument("execution")
@click.option("--json", "as_json", is_flag=True, help="Print ListPipelineExecutionSteps-shaped JSON.")
def steps_cmd(execution: str, as_json: bool) -> None:
    """The steps of an execution (ARN or id) that have started, oldest first: type, status, attempts,
    times, where a cached or reused result came from, and why a step failed."""
    from sluice.workflow.display import step_types, steps_listing

    handle = _execution(_session(), execution)
    steps = handle.step_list()
    if as_json:
        _echo_json({"PipelineExecutionSteps": steps})
        return
    description = handle.describe()
    started = description.get("CreationTime")
    day = started.date() if isinstance(started, dt.datetime) else None
    click.echo(f"{description['PipelineExecutionArn']}  {description['PipelineExecutionStatus']}  "
               f"(started {_fmt_time(started)} UTC)")
    _print(steps_listing(steps, step_types(handle.request.get("PipelineDefinition")), day))


@pipeline.command("stop")
@click.argument("execution")
def stop_pipeline_cmd(execution: str) -> None:
    """Ask an execution (ARN or id) to stop: its driver starts no new step, stops the running jobs, and
    records Stopped. Returns at once."""
    handle = _execution(_session(), execution)
    handle.stop()
    click.echo(f"stop requested for {handle.arn}")


@pipeline.command("explain")
@click.argument("execution")
@click.argument("step")
@click.option("--json", "as_json", is_flag=True, help="The outcome, summary and differences as JSON.")
def explain_pipeline_cmd(execution: str, step: str, as_json: bool) -> None:
    """Why STEP of EXECUTION (ARN or id) was, or was not, a cache hit: the run it reused, or what differs from
    the nearest earlier run (an attribute old -> new, or the input object whose bytes changed)."""
    explained = _execution(_session(), execution).explain(step)
    if as_json:
        click.echo(json.dumps({"Outcome": str(explained.outcome), "Summary": explained.summary,
                               "Details": list(explained.details)}, indent=2))
    else:
        click.echo(str(explained))


def _parse_parameters(values: tuple[str, ...]) -> dict[str, str]:
    """``("Name=Value", ...)`` as a dict of strings (the wire format; the executor converts them)."""
    out: dict[str, str] = {}
    for text in values:
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise click.BadParameter(f"{text!r} is not NAME=VALUE (for example --parameter Threshold=0.8).",
                                     param_hint="'--parameter'")
        if name in out:
            raise click.BadParameter(f"parameter {name!r} is given twice; give each parameter once.",
                                     param_hint="'--parameter'")
        out[name] = value
    return out


def _default_name(path: Path) -> str:
    """The file's stem as a pipeline name: every run of characters other than letters, digits and hyphens
    becomes one hyphen (``my_pipeline.json`` -> ``my-pipeline``)."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", path.stem).strip("-")


def _checked_pipeline(sess: Any, path: Path, name: str, overrides: Mapping[str, str]) -> Any:
    """The pipeline in ``path``, with everything a start would refuse checked first, so bad input records
    nothing: the JSON, the definition, the step types and the parameter values."""
    from sluice.errors import PipelineError
    from sluice.workflow.executor import check_supported
    from sluice.workflow.pipeline import Pipeline
    from sluice.workflow.validation import validate_overrides

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineError(f"cannot read the pipeline definition {path}: {exc}") from None
    try:
        result = Pipeline.from_definition(text, sagemaker_session=sess, name=name)
    except PipelineError as exc:
        hint = " Give a valid one with --name." if str(exc).startswith("pipeline name") else ""
        raise PipelineError(f"{path}: {exc}{hint}") from None
    definition = result.compile()
    check_supported(definition, sess.config)
    validate_overrides(definition.parameters, overrides)
    return result


def _start_in_background(sess: Any, name: str, parameters: tuple[str, ...], max_parallel: int | None) -> str:
    """Start the recorded pipeline in a detached driver process (it outlives this one); its execution's ARN."""
    from sluice.errors import PipelineError

    log_dir = sess.config.home / "pipelines" / "drivers"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    command = [sys.executable, "-m", "sluice.cli", "pipeline", "drive", name]
    for value in parameters:
        command += ["--parameter", value]
    if max_parallel is not None:
        command += ["--max-parallel", str(max_parallel)]
    with open(log_path, "ab") as log:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True)
    assert child.stdout is not None
    with child.stdout:
        line = child.stdout.readline().strip()
    child.wait()  # the intermediate process exits at once; the driver it forked runs on
    if not line.startswith("arn:"):
        raise PipelineError(f"the background driver did not start the execution; its log {log_path} says:\n"
                            f"{log_path.read_text().strip()}")
    click.echo(f"driver log: {log_path}", err=True)
    return line


def _stop_on_interrupt(execution: Any) -> Any:
    """After Ctrl-C: stop the execution and wait until it has ended; a second Ctrl-C abandons it at once."""
    from sluice.errors import PipelineError
    from sluice.workflow.execution import open_execution

    arn = execution.arn
    try:
        click.echo(f"stopping {arn} (Ctrl-C again abandons it: its driver is this process)", err=True)
        with contextlib.suppress(PipelineError):  # it ended meanwhile
            execution.stop()
        # A Thread.join that Ctrl-C interrupted can report the thread ended while it still runs (CPython 3.11's
        # _wait_for_tstate_lock releases the running thread's lock): wait on the record instead.
        execution = open_execution(execution.config, arn)
        execution.join(None)
        return execution
    except KeyboardInterrupt:
        # Exiting normally would wait for the step threads, that is, for the running jobs to end. Leave now:
        # the jobs' instances die with this process, and readers will mark the execution Failed.
        click.echo(f"abandoned {arn}", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)


def _wait_and_report(execution: Any) -> int:
    """Wait (live table in a terminal, a line per step change otherwise; Ctrl-C stops the execution), print
    the outcome, and return the exit status: 0 when it Succeeded, else 1."""
    from sluice.workflow.display import follow_execution, watch_execution

    try:
        if sys.stdout.isatty():
            watch_execution(execution, show=True)
        else:
            follow_execution(execution, click.echo)
    except KeyboardInterrupt:
        execution = _stop_on_interrupt(execution)
    description = execution.describe()
    status = description["PipelineExecutionStatus"]
    reason = description.get("FailureReason")
    click.echo(f"{execution.arn} {status}" + (f": {reason}" if reason else ""))
    return 0 if status == "Succeeded" else 1


@pipeline.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="Pipeline name to record it under (default: the file's stem).")
@click.option("--parameter", "-p", "parameters", multiple=True, metavar="NAME=VALUE",
              help="A parameter value (repeatable); read as the parameter's declared type.")
@click.option("--max-parallel", type=click.IntRange(min=1), default=None,
              help="MaxParallelExecutionSteps for this execution (default: the pipeline's, else 50).")
@click.option("--no-wait", is_flag=True, help="Print the execution's ARN and return; a background process runs it.")
@click.pass_context
def run_pipeline_cmd(ctx: click.Context, file: Path, name: str | None, parameters: tuple[str, ...],
                     max_parallel: int | None, no_wait: bool) -> None:
    """Run a pipeline definition JSON (as the SageMaker SDK exports it): record it under NAME, start it, and
    wait. Exits 0 when the execution Succeeded, 1 when it did not, 2 when the input is refused (nothing is
    recorded then)."""
    from sluice.session import get_execution_role
    from sluice.workflow.parallelism_config import ParallelismConfiguration

    sess = _session()
    overrides = _parse_parameters(parameters)
    name = name or _default_name(file)
    checked = _checked_pipeline(sess, file, name, overrides)
    existing = sess.metadata.get_resource("Pipeline", name)
    checked.upsert(role_arn=(existing.record.get("RoleArn") if existing else None) or get_execution_role())
    if no_wait:
        click.echo(_start_in_background(sess, name, parameters, max_parallel))
        return
    execution = checked.start(parameters=overrides,
                              parallelism_config=ParallelismConfiguration(max_parallel) if max_parallel else None)
    click.echo(f"started {execution.arn}")
    ctx.exit(_wait_and_report(execution))


@pipeline.command("drive", hidden=True)
@click.argument("name")
@click.option("--parameter", "parameters", multiple=True)
@click.option("--max-parallel", type=click.IntRange(min=1), default=None)
def drive_pipeline_cmd(name: str, parameters: tuple[str, ...], max_parallel: int | None) -> None:
    """(Internal, for ``run --no-wait``.) Detach, start the recorded pipeline, write its ARN to standard
    output, then drive it to its end with all output going to standard error (the driver log)."""
    from sluice.workflow.parallelism_config import ParallelismConfiguration
    from sluice.workflow.pipeline import Pipeline

    if os.fork() != 0:  # the caller waits for this process only; the driver lives on in the child
        os._exit(0)
    os.setsid()  # no terminal: closing the shell or Ctrl-C in it does not reach the driver
    report = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # only the ARN goes to the caller; everything else to the log
    try:
        execution = Pipeline(name=name, sagemaker_session=_session()).start(
            parameters=_parse_parameters(parameters),
            parallelism_config=ParallelismConfiguration(max_parallel) if max_parallel else None)
    except Exception as exc:
        click.echo(f"error: {exc}", err=True)
        sys.stderr.flush()
        report.close()  # the caller reads the log once this closes
        os._exit(2)
    report.write(f"{execution.arn}\n")
    report.close()
    execution.join(None)


def run() -> None:
    try:
        code = main(standalone_mode=False)
    except SluiceError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)  # ctx.exit(n) returns n when not standalone


if __name__ == "__main__":
    run()
