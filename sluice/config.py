"""Where sluice keeps things and which services it talks to.

Defaults need no set-up: everything lives under the sluice home (``SLUICE_HOME``, else ``~/.sluice``).
A TOML file at ``$SLUICE_HOME/config.toml`` (or ``SLUICE_CONFIG``) and the standard AWS environment
variables switch to real services::

    [storage]
    endpoint_url = "http://127.0.0.1:9000"   # any S3-compatible endpoint; AWS_ENDPOINT_URL_S3 wins
    region = "us-east-1"
    access_key_id = "..."                    # AWS_ACCESS_KEY_ID wins
    secret_access_key = "..."                # AWS_SECRET_ACCESS_KEY wins

    [metadata]
    url = "postgresql+psycopg://user:pw@host/sluice"   # SLUICE_METADATA_URL wins

    [runtime]
    sandbox = "auto"          # "auto" | "bwrap" | "none"   (SLUICE_SANDBOX wins)

    [quotas]
    "ml.m5.xlarge" = 40       # instances of a type one job may use

    [images]                  # image URIs sluice does not know, mapped to a Python environment
    "my-registry/my-image:1.0" = { python = "/path/to/python", requirements = ["numpy"] }

    [lambdas]                 # AWS Lambda functions (by name or ARN) a LambdaStep names, mapped to Python callables
    "score-gate" = "mypackage.gates:handler"
    "arn:aws:lambda:us-east-1:123456789012:function:notify" = "lambdas/notify.py:handler"
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from sluice.errors import SpecError

__all__ = ["ACCOUNT_ID", "Config", "StorageConfig", "current_config", "lambda_target", "load_config", "reset_config"]

#: The account every ARN names: there is no AWS account locally, so one fixed, obviously-local number.
ACCOUNT_ID = "000000000000"


@dataclass(frozen=True)
class StorageConfig:
    """How to reach object storage. ``endpoint_url`` unset means the embedded local store."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None

    @property
    def is_local(self) -> bool:
        return self.endpoint_url is None


@dataclass(frozen=True)
class Config:
    """The resolved configuration. Build it with :func:`load_config`."""

    home: Path
    storage: StorageConfig = field(default_factory=StorageConfig)
    metadata_url: str | None = None
    sandbox: str = "auto"
    quotas: dict[str, int] = field(default_factory=dict)
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``[lambdas]``: an AWS Lambda function name or ARN -> ``"module:callable"`` or ``"/path/file.py:callable"``
    #: (a relative path is read from the config file's directory); see :func:`lambda_target`.
    lambdas: dict[str, str] = field(default_factory=dict)
    #: The file this configuration was read from (it may not exist); messages point users at it.
    config_file: Path | None = None

    @property
    def store_root(self) -> Path:
        """Root of the embedded object store: ``s3://bucket/key`` is ``store_root/bucket/key``."""
        return self.home / "storage"

    @property
    def jobs_root(self) -> Path:
        return self.home / "jobs"

    @property
    def database_url(self) -> str:
        return self.metadata_url or f"sqlite:///{self.home / 'sluice.db'}"


_SECTIONS = ("storage", "metadata", "runtime", "quotas", "images", "lambdas")
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_LAMBDA_TARGET = re.compile(rf"(?P<source>.+):(?P<attr>{_IDENTIFIER}(?:\.{_IDENTIFIER})*)")


def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"sluice config file {path} is not valid TOML: {exc}. Fix or remove it.") from exc
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:  # a misspelt section would otherwise be ignored without a word
        raise SpecError(f"sluice config file {path} has unknown section(s) {', '.join(f'[{u}]' for u in unknown)}; "
                        f"the sections are {', '.join(f'[{s}]' for s in _SECTIONS)}.")
    return data


def load_config(home: str | os.PathLike[str] | None = None) -> Config:
    """Resolve the configuration from ``home`` (or ``SLUICE_HOME``), its config file and the environment."""
    env = os.environ
    root = Path(home or env.get("SLUICE_HOME") or Path.home() / ".sluice").expanduser().resolve()
    config_file = Path(env.get("SLUICE_CONFIG") or root / "config.toml")
    data = _read_file(config_file)
    st = data.get("storage", {})
    storage = StorageConfig(
        endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or st.get("endpoint_url"),
        region=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or st.get("region", "us-east-1"),
        access_key_id=env.get("AWS_ACCESS_KEY_ID") or st.get("access_key_id"),
        secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or st.get("secret_access_key"),
        session_token=env.get("AWS_SESSION_TOKEN") or st.get("session_token"),
    )
    sandbox = env.get("SLUICE_SANDBOX") or data.get("runtime", {}).get("sandbox", "auto")
    if sandbox not in ("auto", "bwrap", "none"):
        raise SpecError(
            f"sandbox must be 'auto', 'bwrap' or 'none', not {sandbox!r} (SLUICE_SANDBOX or [runtime] sandbox)."
        )
    quotas = {str(k): int(v) for k, v in data.get("quotas", {}).items()}
    images = {str(k): v for k, v in data.get("images", {}).items()}
    for uri, spec in images.items():
        if not isinstance(spec, dict):
            raise SpecError(
                f"[images] entry {uri!r} must be a table like {{ python = \"/path/to/python\", "
                f"requirements = [\"numpy\"] }}, not {spec!r}."
            )
    lambdas = _lambdas(data.get("lambdas", {}), config_file)
    return Config(
        home=root,
        storage=storage,
        metadata_url=env.get("SLUICE_METADATA_URL") or data.get("metadata", {}).get("url"),
        sandbox=sandbox,
        quotas=quotas,
        config_file=config_file,
        images=images,
        lambdas=lambdas,
    )


def _lambdas(section: Any, config_file: Path) -> dict[str, str]:
    """The ``[lambdas]`` table, each value checked for its ``source:callable`` form (nothing is imported here)."""
    example = '"my-function" = "mypackage.module:handler"'
    if not isinstance(section, dict):
        raise SpecError(f"[lambdas] in {config_file} must be a table of entries like {example}.")
    lambdas: dict[str, str] = {}
    for function, target in section.items():
        if not isinstance(target, str) or not _LAMBDA_TARGET.fullmatch(target.strip()):
            raise SpecError(f"[lambdas] entry {function!r} in {config_file} must be \"module:callable\" or "
                            f"\"/path/to/file.py:callable\", not {target!r}; e.g. {example}.")
        lambdas[str(function)] = target.strip()
    return lambdas


def lambda_target(target: str) -> tuple[str, str]:
    """``(source, attribute path)`` of a ``[lambdas]`` value: ``"pkg.mod:handler"`` -> ``("pkg.mod", "handler")``,
    ``"/x/gate.py:Gate.run"`` -> ``("/x/gate.py", "Gate.run")``. The source is a file when it ends in ``.py``."""
    match = _LAMBDA_TARGET.fullmatch(target.strip())
    if match is None:
        raise SpecError(f"{target!r} is not \"module:callable\" or \"/path/to/file.py:callable\".")
    return match["source"], match["attr"]


@cache
def _cached(home: str | None, env_key: tuple[tuple[str, str], ...]) -> Config:
    return load_config(home)


_ENV_KEYS = (
    "SLUICE_HOME", "SLUICE_CONFIG", "SLUICE_METADATA_URL", "SLUICE_SANDBOX", "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION",
    "AWS_REGION",
)


def current_config() -> Config:
    """The configuration for the current environment, cached per distinct environment."""
    key = tuple((k, os.environ.get(k, "")) for k in _ENV_KEYS)
    return _cached(None, key)


def reset_config() -> None:
    """Forget cached configurations (tests that edit the config file call this)."""
    _cached.cache_clear()
