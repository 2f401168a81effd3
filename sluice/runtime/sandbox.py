"""Run an instance's command with its own tree at ``/opt/ml``.

With bubblewrap, the instance sees the host file system as it is, except that ``/opt/ml`` is its own
directory; it runs without capabilities, so even as root it cannot write the read-only objects that
File mode hard-links in from the embedded store. Without bubblewrap (not installed, or user namespaces
disabled), sluice redirects: ``SAGEMAKER_BASE_DIR`` names the tree (the SageMaker toolkits honour it),
arguments that name ``/opt/ml/...`` are rewritten, and sluice says once that hard-coded paths need
bwrap.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sluice.errors import SpecError
from sluice.jobs.layout import CONTAINER_ROOT, InstanceLayout

__all__ = ["Sandbox", "SandboxKind", "detect_sandbox"]

log = logging.getLogger("sluice.runtime")


class SandboxKind(StrEnum):
    BWRAP = "bwrap"
    NONE = "none"


@dataclass(frozen=True)
class Sandbox:
    kind: SandboxKind
    bwrap: str | None = None

    @property
    def isolates(self) -> bool:
        """Whether instances get their own ``/opt/ml`` (and cannot write linked inputs)."""
        return self.kind is SandboxKind.BWRAP

    def wrap(
        self, argv: list[str], layout: InstanceLayout, env: dict[str, str], *,
        read_only: tuple[str, ...] = (), isolate_network: bool = False, workdir: str = CONTAINER_ROOT,
    ) -> tuple[list[str], dict[str, str]]:
        """The command line and environment that run ``argv`` as ``layout``'s instance.

        ``read_only`` names container paths the script may read but not change (FastFile channels);
        ``isolate_network`` gives the instance a network namespace with nothing in it
        (``EnableNetworkIsolation``). Both need bubblewrap; without it they are not enforced. ``workdir`` is
        the container directory the command starts in (without bubblewrap the caller starts it in the matching
        host directory).
        """
        if self.kind is SandboxKind.BWRAP:
            assert self.bwrap is not None
            cmd = [self.bwrap, "--dev-bind", "/", "/", "--bind", str(layout.root), CONTAINER_ROOT]
            for path in read_only:
                cmd += ["--ro-bind", str(layout.host_path(path)), path]
            if isolate_network:
                cmd.append("--unshare-net")
            cmd += ["--cap-drop", "ALL", "--die-with-parent", "--chdir", workdir, "--"]
            return cmd + argv, env
        root = str(layout.root)
        env = {k: _OPT_ML.sub(root, v) if CONTAINER_ROOT in v else v for k, v in env.items()}
        env.update(SAGEMAKER_BASE_DIR=root, SLUICE_OPT_ML=root)
        # Without bwrap's --die-with-parent, setpriv gives the same guarantee: the script dies with its driver.
        guard = [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []
        return guard + [layout.rewrite(a) for a in argv], env


#: ``/opt/ml`` as a whole path component, inside plain values and JSON alike (SM_TRAINING_ENV).
_OPT_ML = re.compile(r"/opt/ml(?=/|\"|'|:|,|$)")

_SETPRIV = shutil.which("setpriv")

_lock = threading.Lock()
_probed: dict[str, Sandbox] = {}
_warned = False


def _bwrap_works(bwrap: str) -> bool:
    with tempfile.TemporaryDirectory(prefix="sluice-bwrap-probe-") as tmp:
        (Path(tmp) / "probe").write_text("ok")
        try:
            out = subprocess.run(
                [bwrap, "--dev-bind", "/", "/", "--bind", tmp, CONTAINER_ROOT, "--cap-drop", "ALL",
                 "cat", f"{CONTAINER_ROOT}/probe"],
                capture_output=True, timeout=20,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return out.returncode == 0 and out.stdout == b"ok"


def detect_sandbox(setting: str = "auto") -> Sandbox:
    """The sandbox to use for ``setting`` ("auto", "bwrap" or "none"), probed once per process."""
    global _warned
    with _lock:
        if setting in _probed:
            return _probed[setting]
        bwrap = shutil.which("bwrap")
        if setting == "none":
            box = Sandbox(SandboxKind.NONE)
        elif bwrap and _bwrap_works(bwrap):
            box = Sandbox(SandboxKind.BWRAP, bwrap)
        elif setting == "bwrap":
            raise SpecError(
                "sandbox 'bwrap' was asked for but bubblewrap " + ("does not run here" if bwrap else "is not installed")
                + ": install it (apt-get install bubblewrap) and allow user namespaces, or set sandbox = 'auto'."
            )
        else:
            box = Sandbox(SandboxKind.NONE)
            if not _warned:
                _warned = True
                log.warning(
                    "bubblewrap is %s, so jobs run without a sandbox: /opt/ml is redirected through "
                    "SAGEMAKER_BASE_DIR and rewritten arguments, and scripts that hard-code /opt/ml paths will not "
                    "find their files. Install it with: apt-get install bubblewrap",
                    "not usable here" if bwrap else "not installed",
                )
        _probed[setting] = box
        return box
