"""Shared fixtures: an isolated sluice home per test, a real S3-compatible server on loopback, and a throwaway
PostgreSQL server for the metadata store."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sluice.config import reset_config


@pytest.fixture
def sluice_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh, empty sluice home with the embedded local store (no S3 endpoint configured)."""
    home = tmp_path / "sluice-home"
    home.mkdir()
    monkeypatch.setenv("SLUICE_HOME", str(home))
    for var in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "SLUICE_CONFIG", "SLUICE_METADATA_URL"):
        monkeypatch.delenv(var, raising=False)
    reset_config()
    yield home
    reset_config()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (a random free port), spoken to over real HTTP."""
    from tests.s3server import start_s3_server

    server, url = start_s3_server()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def s3_home(sluice_home: Path, s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A sluice home whose object storage is the loopback S3 server, configured as a user would."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    reset_config()
    from tests.s3server import reset_s3_server

    reset_s3_server(s3_server)
    yield sluice_home
    reset_config()


# ---- PostgreSQL ---------------------------------------------------------------------------------------------

POSTGRES_ROOT = Path("/usr/lib/postgresql")
_POSTGRES_TOOLS = ("initdb", "pg_ctl", "pg_isready")
_INSTALL_POSTGRES = ("install them with `bash scripts/install` (as root; it runs `apt-get install postgresql` and "
                     "installs sluice with its postgres extra)")


def _postgres_bin() -> Path:
    """The newest Debian PostgreSQL server's ``bin`` directory; fail (never skip) naming how to install one."""
    found = [d / "bin" for d in POSTGRES_ROOT.glob("*") if all((d / "bin" / t).exists() for t in _POSTGRES_TOOLS)]
    if not found:
        pytest.fail(f"the PostgreSQL server binaries ({', '.join(_POSTGRES_TOOLS)}) are not in "
                    f"{POSTGRES_ROOT}/<version>/bin; {_INSTALL_POSTGRES}.", pytrace=False)
    return max(found, key=lambda b: [int(p) if p.isdigit() else 0 for p in b.parent.name.split(".")])


def _postgres_user() -> list[str]:
    """The prefix that runs a server tool as an unprivileged user: initdb and postgres refuse to run as root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail(f"running as root, the PostgreSQL server needs the 'postgres' user, which does not exist; "
                    f"{_INSTALL_POSTGRES}.", pytrace=False)
    return ["runuser", "-u", "postgres", "--"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class PostgresServer:
    """A PostgreSQL server on 127.0.0.1 that trusts the ``postgres`` user, for this test session only."""

    port: int
    base: Path

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this server, as a user would configure it."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement as ``postgres`` in the maintenance database (outside a transaction)."""
        try:
            import psycopg
        except ModuleNotFoundError:
            pytest.fail(f"psycopg (the PostgreSQL driver) is not installed; {_INSTALL_POSTGRES}.", pytrace=False)
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(sql)


def _run(argv: list[str], what: str, cwd: Path, log: Path | None = None) -> None:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        server_log = log.read_text()[-3000:] if log is not None and log.exists() else ""
        pytest.fail(f"{what} failed ({done.returncode}): {done.stdout}{done.stderr}{server_log}", pytrace=False)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the session, from the Debian binaries: a cluster in a temporary
    directory owned by ``postgres`` (initdb refuses root), listening on a free loopback port with its socket in
    that directory, durability off (nothing outlives the session). Stopped and removed at the end."""
    bin_dir = _postgres_bin()
    as_postgres = _postgres_user()
    base = Path(tempfile.mkdtemp(prefix="sluice-postgres-"))
    if as_postgres:
        user = pwd.getpwnam("postgres")
        os.chown(base, user.pw_uid, user.pw_gid)
    data, log = base / "data", base / "server.log"
    try:
        _run([*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
              "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"], "initdb", base)
        options = (f"-c listen_addresses=127.0.0.1 -k {base} -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=200")
        for attempt in range(3):  # the free port can be taken before the server binds it: take another
            port = _free_port()
            done = subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "start", "-D", str(data), "-l", str(log),
                                   "-w", "-t", "60", "-o", f"{options} -p {port}"], cwd=base, capture_output=True)
            if done.returncode == 0:
                break
            if attempt == 2:
                pytest.fail(f"PostgreSQL did not start: {log.read_text()[-3000:] if log.exists() else ''}",
                            pytrace=False)
        _run([str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-t", "60"],
             "waiting for PostgreSQL to accept connections (pg_isready)", base, log)
        yield PostgresServer(port=port, base=base)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w"],
                           cwd=base, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty database on the session's PostgreSQL server, for this test alone.
    Dropped afterwards, closing the connections still open to it, so tests do not pile up server sessions."""
    name = f"sluice_{secrets.token_hex(6)}"
    postgres_server.admin(f"CREATE DATABASE {name}")
    yield postgres_server.url(name)
    postgres_server.admin(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def postgres_home(sluice_home: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh sluice home whose metadata store is PostgreSQL, configured by ``SLUICE_METADATA_URL``."""
    monkeypatch.setenv("SLUICE_METADATA_URL", postgres_url)
    reset_config()
    yield sluice_home
    reset_config()


os.environ.setdefault("SLUICE_QUIET", "1")
