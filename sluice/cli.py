"""The ``sluice`` command: read and control the record of jobs from any process."""

from __future__ import annotations

import datetime as dt
import json
import sys
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
    return str(value or "")


@click.group()
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
    """Most recent jobs first."""
    sess = _session()
    rows = sess.metadata.list_jobs(_KINDS.get(kind) if kind else None, status, name_contains, limit)
    if any(not JobStatus(r.status).is_terminal for r in rows):  # notice jobs whose driving process died
        for r in rows:
            if not JobStatus(r.status).is_terminal:
                sess._describe(r.kind, r.name)
        rows = sess.metadata.list_jobs(_KINDS.get(kind) if kind else None, status, name_contains, limit)
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


def run() -> None:
    try:
        main(standalone_mode=False)
    except SluiceError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        sys.exit(1)


if __name__ == "__main__":
    run()
