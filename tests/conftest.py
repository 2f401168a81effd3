"""Shared fixtures: an isolated sluice home per test, and a real S3-compatible server on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
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


os.environ.setdefault("SLUICE_QUIET", "1")
