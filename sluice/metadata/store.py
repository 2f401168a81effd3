"""The record of every job, readable from any process (SQLite by default, PostgreSQL by URL).

Rows hold the request as sent and a ``Describe*``-shaped record that the job's driver keeps current.
Status changes are conditional updates (``WHERE status IN allowed``), so two processes racing to
finish and to stop the same job cannot both win, and a terminal status is never left.

The same code runs on SQLite and PostgreSQL, and behaves the same on both: names longer than their column
are refused before the database sees them (PostgreSQL would refuse them, SQLite would store them), name
filters are spelt so that neither database's ``LIKE`` rules leak through, a step row is written with one
upsert, and :meth:`MetadataStore.database_lock` gives PostgreSQL users a lock every host shares.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from sluice.errors import SpecError

__all__ = ["CacheEntry", "JobRow", "MetadataStore", "MetricPoint", "ResourceRow", "StepRow", "open_metadata"]

_meta = MetaData()

jobs = Table(
    "jobs",
    _meta,
    Column("kind", String(32), primary_key=True),
    Column("name", String(63), primary_key=True),
    Column("status", String(32), nullable=False, index=True),
    Column("request", Text, nullable=False),
    Column("record", Text, nullable=False),
    Column("created_at", Float, nullable=False, index=True),
    Column("updated_at", Float, nullable=False),
    Column("driver_host", String(255)),
    Column("driver_pid", Integer),
    Column("stop_requested", Boolean, nullable=False, default=False),
)


job_metrics = Table(
    "job_metrics",
    _meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("job", String(63), nullable=False, index=True),
    Column("metric", String(255), nullable=False),
    Column("value", Float, nullable=False),
    Column("timestamp", Float, nullable=False),
    Column("host", String(32)),
)


resources = Table(
    "resources",
    _meta,
    Column("kind", String(48), primary_key=True),
    Column("name", String(256), primary_key=True),  # a pipeline's name may have 256 characters
    Column("record", Text, nullable=False),
    Column("created_at", Float, nullable=False, index=True),
    Column("updated_at", Float, nullable=False),
)


pipeline_steps = Table(
    "pipeline_steps",
    _meta,
    Column("execution", String(64), primary_key=True),
    Column("step", String(256), primary_key=True),
    Column("status", String(32), nullable=False),
    Column("record", Text, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
"""One row per step of a pipeline execution: its ``ListPipelineExecutionSteps`` entry plus what later steps
read from it (``record["Properties"]``). The execution itself is a ``jobs`` row of kind PipelineExecution."""

cache_entries = Table(
    "cache_entries",
    _meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pipeline", String(256), nullable=False, index=True),
    Column("step", String(256), nullable=False),
    Column("key", String(64), nullable=False, index=True),
    Column("parts", Text, nullable=False),
    Column("execution_arn", Text, nullable=False),
    Column("record", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)
"""A successful step run that a later run with the same cache key may reuse (contract 5.8)."""


@dataclass(frozen=True)
class StepRow:
    """One step of one pipeline execution as stored."""

    execution: str
    step: str
    status: str
    record: dict[str, Any]
    started_at: float
    updated_at: float


@dataclass(frozen=True)
class CacheEntry:
    """A reusable step run: its key, the parts the key was made of, and the step record to copy."""

    id: int
    pipeline: str
    step: str
    key: str
    parts: dict[str, Any]
    execution_arn: str
    record: dict[str, Any]
    created_at: float


@dataclass(frozen=True)
class ResourceRow:
    """A named thing that is not a job: a Model, an Endpoint, a ModelPackageGroup, a ModelPackage."""

    kind: str
    name: str
    record: dict[str, Any]
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class MetricPoint:
    """One value of a metric, as matched in a job's logs."""

    metric: str
    value: float
    timestamp: float
    host: str | None


@dataclass(frozen=True)
class JobRow:
    """One job as stored."""

    kind: str
    name: str
    status: str
    request: dict[str, Any]
    record: dict[str, Any]
    created_at: float
    updated_at: float
    driver_host: str | None
    driver_pid: int | None
    stop_requested: bool

    def driver_is_alive(self) -> bool:
        """Whether the process driving this job still runs (only knowable on the same host)."""
        if self.driver_pid is None or self.driver_host != socket.gethostname():
            return True
        try:
            os.kill(self.driver_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _row(r: Any) -> JobRow:
    return JobRow(
        kind=r.kind,
        name=r.name,
        status=r.status,
        request=json.loads(r.request),
        record=json.loads(r.record),
        created_at=r.created_at,
        updated_at=r.updated_at,
        driver_host=r.driver_host,
        driver_pid=r.driver_pid,
        stop_requested=bool(r.stop_requested),
    )


def _check_length(column: Column, value: str, what: str) -> None:
    """Refuse a value longer than its column, on every database alike (PostgreSQL enforces the length with a
    DataError; SQLite would store it, and the same code would fail later on PostgreSQL)."""
    limit = getattr(column.type, "length", None)
    if limit is not None and len(value) > limit:
        raise SpecError(f"{what} {value!r} has {len(value)} characters; at most {limit} are allowed. "
                        "Pick a shorter name.")


def _lock_key(name: str) -> int:
    """The 64-bit PostgreSQL advisory lock key for ``name``: stable across processes and Python runs (unlike
    ``hash``), and prefixed so that sluice's locks do not collide with other programs' in the same database."""
    digest = hashlib.blake2b(f"sluice/{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_UPSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
"""The dialects whose ``INSERT ... ON CONFLICT DO UPDATE`` writes a row in one statement."""


class MetadataStore:
    """Jobs, pipeline executions and their steps, resources and cache entries in one SQLAlchemy database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                if set(_meta.tables) <= set(inspect(conn).get_table_names()):
                    return  # nothing to write: a read-only file opens too
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock first: processes creating them at once wait
                _meta.create_all(conn)
                conn.commit()
            return
        try:
            with engine.begin() as conn:
                if self.has_database_locks:  # processes opening a fresh database at once would collide
                    conn.execute(select(func.pg_advisory_xact_lock(_lock_key("schema"))))
                _meta.create_all(conn)
        except OperationalError as exc:
            reason = str(exc.orig or exc).strip().splitlines()[0]
            raise SpecError(
                f"cannot open the metadata database {engine.url.render_as_string(hide_password=True)}: {reason}. "
                "Check SLUICE_METADATA_URL (or [metadata] url in config.toml): the server must be running and "
                "accept this user, and the database must exist (createdb <name>)."
            ) from None

    # ---- locking ------------------------------------------------------------------------------
    @property
    def has_database_locks(self) -> bool:
        """Whether :meth:`database_lock` is available (PostgreSQL). SQLite's users share one host, so they lock a
        file beside the database instead."""
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def database_lock(self, name: str) -> Iterator[None]:
        """Hold the lock ``name`` in the database itself, so that every process on every host using this
        database takes it in turn.

        It is a transaction-level advisory lock (``pg_advisory_xact_lock``) on a connection of its own: released
        when the block ends, by the server if this process dies, and never left held on a pooled connection.
        Work done inside the block on other connections is committed before the lock is released, so the next
        holder reads it.
        """
        if not self.has_database_locks:
            raise SpecError(f"database_lock needs PostgreSQL; this metadata store is {self.engine.dialect.name}.")
        with self.engine.connect() as conn, conn.begin():
            conn.execute(select(func.pg_advisory_xact_lock(_lock_key(name))))
            yield

    # ---- jobs ---------------------------------------------------------------------------------
    def create_job(self, kind: str, name: str, status: str, request: dict, record: dict) -> None:
        """Record a new job; a name already taken for this kind, or longer than 63 characters, is refused."""
        _check_length(jobs.c.name, name, f"{kind} name")
        now = time.time()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(jobs).values(
                        kind=kind, name=name, status=status, request=json.dumps(request, default=str),
                        record=json.dumps(record, default=str), created_at=now, updated_at=now,
                        driver_host=socket.gethostname(), driver_pid=os.getpid(), stop_requested=False,
                    )
                )
        except IntegrityError:
            raise SpecError(
                f"ResourceInUse: a {kind} named {name!r} already exists. Job names are unique; "
                "pick another job_name, or pass base_job_name to get a unique timestamped name."
            ) from None

    def get_job(self, kind: str, name: str) -> JobRow | None:
        """The job named ``name``; names match without regard to case, as the service's do (its ARNs spell
        them in lower case, so a name taken from an ARN must still find the job)."""
        with self.engine.connect() as conn:
            r = conn.execute(select(jobs).where(jobs.c.kind == kind, jobs.c.name == name)).first()
            if r is None:
                r = conn.execute(select(jobs).where(jobs.c.kind == kind,
                                                    func.lower(jobs.c.name) == name.lower())).first()
        return _row(r) if r is not None else None

    def list_jobs(
        self, kind: str | None = None, status: str | None = None, name_contains: str | None = None,
        limit: int = 100,
    ) -> list[JobRow]:
        q = select(jobs).order_by(jobs.c.created_at.desc()).limit(limit)
        if kind:
            q = q.where(jobs.c.kind == kind)
        if status:
            q = q.where(jobs.c.status == status)
        if name_contains:  # ignoring case on every database (SQLite's LIKE ignores it, PostgreSQL's does not)
            q = q.where(func.lower(jobs.c.name).contains(name_contains.lower(), autoescape=True))
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q)]

    def update_job(
        self, kind: str, name: str, *, record: dict | None = None, status: str | None = None,
        allowed_from: Iterable[str] | None = None, driver_pid: int | None = None,
    ) -> bool:
        """Update a job; with ``allowed_from``, only if its status is one of those. Returns whether it did."""
        values: dict[str, Any] = {"updated_at": time.time()}
        if record is not None:
            values["record"] = json.dumps(record, default=str)
        if status is not None:
            values["status"] = status
        if driver_pid is not None:
            values["driver_pid"] = driver_pid
            values["driver_host"] = socket.gethostname()
        q = update(jobs).where(jobs.c.kind == kind, jobs.c.name == name)
        if allowed_from is not None:
            q = q.where(jobs.c.status.in_(list(allowed_from)))
        with self.engine.begin() as conn:
            return conn.execute(q.values(**values)).rowcount > 0

    def jobs_in_status(self, kind: str, statuses: Iterable[str]) -> list[JobRow]:
        """Every job of ``kind`` in one of ``statuses``, oldest first and without ``list_jobs``' limit: the
        instance quota sums what all of a kind's unfinished jobs hold."""
        q = select(jobs).where(jobs.c.kind == kind, jobs.c.status.in_(list(statuses))).order_by(jobs.c.created_at)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q)]

    # ---- metrics ------------------------------------------------------------------------------
    def add_metrics(self, kind: str, job: str, points: list[MetricPoint]) -> None:
        if not points:
            return
        with self.engine.begin() as conn:
            conn.execute(insert(job_metrics), [
                {"kind": kind, "job": job, "metric": p.metric, "value": p.value, "timestamp": p.timestamp,
                 "host": p.host} for p in points
            ])

    def metrics(self, kind: str, job: str, metric: str | None = None) -> list[MetricPoint]:
        """The time series of a job's metrics, oldest first."""
        q = select(job_metrics).where(job_metrics.c.kind == kind, job_metrics.c.job == job)
        if metric is not None:
            q = q.where(job_metrics.c.metric == metric)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(job_metrics.c.timestamp, job_metrics.c.id)).all()
        return [MetricPoint(r.metric, r.value, r.timestamp, r.host) for r in rows]

    # ---- resources (models, endpoints, model packages) ----------------------------------------
    def create_resource(self, kind: str, name: str, record: dict[str, Any]) -> None:
        """Record a new resource; a name already taken for this kind is refused, as the service refuses it."""
        _check_length(resources.c.name, name, f"{kind} name")
        now = time.time()
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(resources).values(kind=kind, name=name, record=json.dumps(record, default=str),
                                                      created_at=now, updated_at=now))
        except IntegrityError:
            raise SpecError(f"ResourceInUse: a {kind} named {name!r} already exists; pick another name, or delete "
                            "the existing one first.") from None

    def get_resource(self, kind: str, name: str) -> ResourceRow | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(resources).where(resources.c.kind == kind, resources.c.name == name)).first()
        return ResourceRow(r.kind, r.name, json.loads(r.record), r.created_at, r.updated_at) if r else None

    def list_resources(self, kind: str, name_prefix: str | None = None, limit: int = 1000) -> list[ResourceRow]:
        """Resources of ``kind``, oldest first; ``name_prefix`` matches exactly, case included."""
        q = select(resources).where(resources.c.kind == kind).order_by(resources.c.created_at).limit(limit)
        if name_prefix:  # not LIKE: SQLite's ignores case, and '_' or '%' in a name would be wildcards
            q = q.where(func.substr(resources.c.name, 1, len(name_prefix)) == name_prefix)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [ResourceRow(r.kind, r.name, json.loads(r.record), r.created_at, r.updated_at) for r in rows]

    def update_resource(self, kind: str, name: str, record: dict[str, Any]) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(
                update(resources).where(resources.c.kind == kind, resources.c.name == name)
                .values(record=json.dumps(record, default=str), updated_at=time.time())
            ).rowcount > 0

    def delete_resource(self, kind: str, name: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(
                delete(resources).where(resources.c.kind == kind, resources.c.name == name)
            ).rowcount > 0

    def request_stop(self, kind: str, name: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(
                update(jobs).where(jobs.c.kind == kind, jobs.c.name == name).values(stop_requested=True)
            ).rowcount > 0

    def stop_requested(self, kind: str, name: str) -> bool:
        with self.engine.connect() as conn:
            r = conn.execute(
                select(jobs.c.stop_requested).where(jobs.c.kind == kind, jobs.c.name == name)
            ).first()
        return bool(r and r[0])


    # ---- pipeline execution steps --------------------------------------------------------------
    def put_step(self, execution: str, step: str, status: str, record: dict[str, Any]) -> None:
        """Insert or replace the row of ``step`` in ``execution`` (its ``started_at`` is kept).

        One ``INSERT ... ON CONFLICT DO UPDATE``: with an update-then-insert, two writers of a new step would both
        insert on PostgreSQL, and one would fail on the primary key.
        """
        now = time.time()
        values = {"status": status, "record": json.dumps(record, default=str), "updated_at": now}
        with self.engine.begin() as conn:
            upsert = _UPSERT.get(self.engine.dialect.name)
            if upsert is not None:
                conn.execute(upsert(pipeline_steps).values(execution=execution, step=step, started_at=now, **values)
                             .on_conflict_do_update(index_elements=["execution", "step"], set_=values))
            else:
                self._update_or_insert_step(conn, execution, step, now, values)

    @staticmethod
    def _update_or_insert_step(conn: Connection, execution: str, step: str, now: float, values: dict) -> None:
        """``put_step`` for a database without ``ON CONFLICT``."""
        done = conn.execute(
            update(pipeline_steps).where(pipeline_steps.c.execution == execution, pipeline_steps.c.step == step)
            .values(**values)
        ).rowcount
        if not done:
            conn.execute(insert(pipeline_steps).values(execution=execution, step=step, started_at=now, **values))

    def list_steps(self, execution: str) -> list[StepRow]:
        """The steps of ``execution`` that have a row, in the order they started."""
        q = (select(pipeline_steps).where(pipeline_steps.c.execution == execution)
             .order_by(pipeline_steps.c.started_at, pipeline_steps.c.step))
        with self.engine.connect() as conn:
            return [StepRow(r.execution, r.step, r.status, json.loads(r.record), r.started_at, r.updated_at)
                    for r in conn.execute(q)]

    # ---- step cache -------------------------------------------------------------------------------
    def add_cache_entry(self, pipeline: str, step: str, key: str, parts: dict[str, Any], execution_arn: str,
                        record: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(cache_entries).values(
                pipeline=pipeline, step=step, key=key, parts=json.dumps(parts, default=str, sort_keys=True),
                execution_arn=execution_arn, record=json.dumps(record, default=str), created_at=time.time()))

    def cache_entries(self, pipeline: str, step: str | None = None, key: str | None = None,
                      not_before: float | None = None, limit: int = 100) -> list[CacheEntry]:
        """Entries of ``pipeline`` (optionally one step, one key, none older than ``not_before``), newest first."""
        q = select(cache_entries).where(cache_entries.c.pipeline == pipeline)
        if step is not None:
            q = q.where(cache_entries.c.step == step)
        if key is not None:
            q = q.where(cache_entries.c.key == key)
        if not_before is not None:
            q = q.where(cache_entries.c.created_at >= not_before)
        q = q.order_by(cache_entries.c.created_at.desc(), cache_entries.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [CacheEntry(r.id, r.pipeline, r.step, r.key, json.loads(r.parts), r.execution_arn,
                               json.loads(r.record), r.created_at) for r in conn.execute(q)]


_BUSY_SECONDS = 10.0


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={int(_BUSY_SECONDS * 1000)}")
    # Switching a fresh file to WAL needs it to itself, and SQLite answers "locked" at once rather than waiting
    # while another process opening it at the same moment holds it: try again until it is free.
    deadline = time.monotonic() + _BUSY_SECONDS
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


_ENGINES: list[Engine] = []
"""Every engine this process opened, so that a forked child can let go of the parent's pooled connections."""


def _forget_inherited_connections() -> None:
    """In a forked child, drop (without closing) the connections the parent pooled: they are the parent's
    sockets, and a child that used or closed them would break the parent's database sessions. The child opens
    its own (``_open`` is keyed by pid)."""
    for engine in _ENGINES:
        engine.dispose(close=False)
    _ENGINES.clear()


os.register_at_fork(after_in_child=_forget_inherited_connections)


@cache
def _open(url: str, pid: int) -> MetadataStore:
    server = not url.startswith("sqlite")
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    try:  # a database server may restart or drop idle connections: test each before use
        engine = create_engine(url, future=True, **({"pool_pre_ping": True} if server else {}))
    except ModuleNotFoundError as exc:
        raise SpecError(f"the metadata URL {url.split('@')[-1]!r} needs the database driver {exc.name!r}, which is "
                        "not installed; for PostgreSQL: pip install 'sluice[postgres]'.") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    store = MetadataStore(engine)
    _ENGINES.append(engine)
    return store


_OPEN_LOCK = threading.Lock()


def open_metadata(url: str) -> MetadataStore:
    """The metadata store at ``url``, one engine per URL per process.

    Locked so that two threads opening it first at once (parallel pipeline steps) do not both create the tables.
    """
    with _OPEN_LOCK:
        return _open(url, os.getpid())
