"""File-mode input staging throughput: the embedded store against ``cp -r``, S3 against plain boto3.

Why: the issue's targets are that staging from the embedded store is at least as fast as copying the
files with ``cp -r`` (ratio = cp time / sluice time >= 1.0), and that staging from an S3-compatible
endpoint is within 10% of a plain 16-thread boto3 download (ratio = boto3 time / sluice time >= 0.9).
sluice is measured through the channels layer the runtime uses: ``plan_channel`` (list the prefix) then
``stage_file_channel(..., link_ok=True)`` (the sandbox is active, so local objects may be hard-linked).

The S3 part runs against the loopback moto server from tests/s3server.py, started in a child process so
the server and the client do not share one GIL. moto moves about 150 MB/s here, so the S3 part uses
200 x 1 MiB objects by default (``--s3-objects``); the local part uses the full 1 GiB.

Usage: ``python bench/staging.py [--objects 1000] [--s3-objects 200] [--reps 3] [--s3-reps 9]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _benchutil import REPO_ROOT, drop_page_cache, fresh_home, median, remove_tree, result_line, timed

NAME_LOCAL = "staging_local"
NAME_S3 = "staging_s3"
TARGET_LOCAL = 1.0  # cp -r time / sluice time, at least
TARGET_S3 = 0.9  # boto3 time / sluice time, at least
MiB = 1 << 20
BUCKET = "sluice-bench"
PREFIX = "staging/"
CHANNEL_PATH = "/opt/ml/processing/input/data"


def payload(index: int, size: int = MiB) -> bytes:
    """Cheap, distinct content per object: its index repeated (no os.urandom, so set-up stays fast)."""
    stamp = f"{index:015d}\n".encode()
    return (stamp * (size // len(stamp) + 1))[:size]


def key(index: int) -> str:
    return f"{PREFIX}part-{index:05d}.bin"


def check_staged(dest: Path, count: int) -> None:
    """Every object landed once, whole, with its own bytes (spot-checked)."""
    files = sorted(p for p in dest.rglob("*") if p.is_file())
    assert len(files) == count, (len(files), count)
    assert all(p.stat().st_size == MiB for p in files)
    for i in (0, count // 2, count - 1):
        assert (dest / f"part-{i:05d}.bin").read_bytes() == payload(i)


def stage_with_sluice(store: Any, dest: Path, link_ok: bool = True) -> tuple[float, float]:
    """Plan and stage the channel as the runtime does; returns (plan seconds, stage seconds)."""
    from sluice.channels.plan import plan_channel
    from sluice.channels.spec import ChannelSpec
    from sluice.channels.staging import stage_file_channel

    spec = ChannelSpec(name="data", s3_uri=f"s3://{BUCKET}/{PREFIX}", local_path=CHANNEL_PATH)
    plan_box: list[Any] = []
    t_plan = timed(lambda: plan_box.append(plan_channel(spec, store, 1)))
    objects = plan_box[0].shards[0]  # the ObjectRefs of instance algo-1 (shards is stable API; for_instance changes)
    t_stage = timed(lambda: stage_file_channel(objects, store, dest, link_ok=link_ok))
    return t_plan, t_stage


# ---- local: embedded store vs cp -r ------------------------------------------------------------------
def bench_local(count: int, reps: int, scratch: Path) -> tuple[str, list[str]]:
    from sluice.config import current_config
    from sluice.storage import store_for

    config = current_config()
    store = store_for(config)
    assert store.kind == "local"
    store.create_bucket(BUCKET)
    for i in range(count):
        store.put(BUCKET, key(i), payload(i))
    src_dir = config.store_root / BUCKET / PREFIX.rstrip("/")
    dropped = drop_page_cache()
    # Destinations on the same file system as the store, as a job's /opt/ml tree is (under the sluice home).
    dest_root = config.home / "jobs"
    dest_root.mkdir(exist_ok=True)

    def run_cp(dest: Path) -> float:
        return timed(lambda: subprocess.run(["cp", "-r", str(src_dir), str(dest)], check=True))

    ours: list[float] = []
    plans: list[float] = []
    base: list[float] = []
    copies: list[float] = []
    for rep in range(reps + 1):  # rep 0 is the warm-up of each, not counted
        for what in ("sluice", "cp", "copy-mode"):
            dest = dest_root / f"{what}-{rep}"
            if dropped:
                drop_page_cache()
            if what == "sluice":
                t_plan, t_stage = stage_with_sluice(store, dest, link_ok=True)
                elapsed = t_plan + t_stage
            elif what == "cp":
                elapsed = run_cp(dest)
            else:  # link_ok=False: what runs without the sandbox (a real copy), for context only
                t_plan, t_stage = stage_with_sluice(store, dest, link_ok=False)
                elapsed = t_plan + t_stage
            if rep == 0:
                check_staged(dest, count)
            else:
                {"sluice": ours, "cp": base, "copy-mode": copies}[what].append(elapsed)
                if what == "sluice":
                    plans.append(t_plan)
            remove_tree(dest)
    ratio = median(base) / median(ours)
    gib = count * MiB / (1 << 30)
    cache = "page cache dropped before every run" if dropped else "warm page cache (could not drop it)"
    details = [
        f"local: {count} objects x 1 MiB = {gib:.2f} GiB, median of {reps}; {cache}",
        f"  sluice plan+stage (hard links): {median(ours) * 1e3:8.1f} ms (plan {median(plans) * 1e3:.1f} ms)",
        f"  cp -r:                          {median(base) * 1e3:8.1f} ms ({gib / median(base):.2f} GiB/s)",
        f"  sluice copy mode (link_ok=False, no sandbox; not the target): {median(copies) * 1e3:.1f} ms "
        f"(cp/sluice {median(base) / median(copies):.2f})",
    ]
    return result_line(NAME_LOCAL, ratio, ">=", TARGET_LOCAL), details


# ---- S3: sluice vs 16 threads of boto3 download_file ---------------------------------------------------
def start_server() -> tuple[subprocess.Popen[str], str]:
    """tests/s3server.start_s3_server in a child process; it stops when its stdin closes."""
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from tests.s3server import start_s3_server\n"
        "server, url = start_s3_server()\n"
        "print(url, flush=True)\n"
        "sys.stdin.read()\n"
        "server.stop()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise RuntimeError("the moto server did not start")
    return proc, url


def bench_s3(count: int, reps: int, scratch: Path) -> tuple[str, list[str]]:
    import boto3
    from botocore.config import Config as BotoConfig

    from sluice.config import StorageConfig
    from sluice.storage.s3 import S3Store

    server, url = start_server()
    try:
        creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        store = S3Store(StorageConfig(endpoint_url=url, region="us-east-1", access_key_id="testing",
                                      secret_access_key="testing"))
        store.create_bucket(BUCKET)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: store.put(BUCKET, key(i), payload(i)), range(count)))
        # A plain client: path-style for moto, and a pool as large as the thread count so it is not starved.
        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1", **creds,
                              config=BotoConfig(s3={"addressing_style": "path"}, max_pool_connections=16))

        def baseline(dest: Path) -> None:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX)
            keys = [o["Key"] for page in pages for o in page.get("Contents", ())]
            dest.mkdir(parents=True)
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda k: client.download_file(BUCKET, k, str(dest / k[len(PREFIX):])), keys))

        ours: list[float] = []
        plans: list[float] = []
        base: list[float] = []
        cpu: dict[str, list[float]] = {"sluice": [], "boto3": []}
        for rep in range(reps + 1):  # rep 0 warms both clients and connection pools, not counted
            # Alternate which goes first: the server (one process on 2 cores) and any other load drift.
            for what in ("sluice", "boto3") if rep % 2 else ("boto3", "sluice"):
                dest = scratch / f"s3-{what}-{rep}"
                cpu0 = time.process_time()
                if what == "sluice":
                    t_plan, t_stage = stage_with_sluice(store, dest)
                    elapsed = t_plan + t_stage
                else:
                    elapsed = timed(lambda d=dest: baseline(d))
                cpu_used = time.process_time() - cpu0
                if rep == 0:
                    check_staged(dest, count)
                else:
                    (ours if what == "sluice" else base).append(elapsed)
                    cpu[what].append(cpu_used)
                    if what == "sluice":
                        plans.append(t_plan)
                remove_tree(dest)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    ratio = median(base) / median(ours)
    mib = count
    details = [
        f"s3 (moto on loopback, separate process): {count} objects x 1 MiB = {mib} MiB, median of {reps}",
        f"  sluice plan+stage:          {median(ours) * 1e3:8.1f} ms (plan {median(plans) * 1e3:.1f} ms, "
        f"{mib / median(ours):.0f} MiB/s)",
        f"  boto3 list + 16 x download: {median(base) * 1e3:8.1f} ms ({mib / median(base):.0f} MiB/s)",
        f"  client CPU (this process, all threads): sluice {median(cpu['sluice']) * 1e3:.0f} ms, "
        f"boto3 {median(cpu['boto3']) * 1e3:.0f} ms",
        "  per rep, ms (sluice/boto3): " + ", ".join(f"{o * 1e3:.0f}/{b * 1e3:.0f}"
                                                       for o, b in zip(ours, base, strict=True)),
    ]
    return result_line(NAME_S3, ratio, ">=", TARGET_S3), details


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000, help="1 MiB objects for the local part")
    parser.add_argument("--s3-objects", type=int, default=200, help="1 MiB objects for the S3 part")
    parser.add_argument("--reps", type=int, default=3, help="timed runs of each, local part")
    parser.add_argument("--s3-reps", type=int, default=9, help="timed runs of each, S3 part")
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument("--skip-local", action="store_true")
    args = parser.parse_args()

    home = fresh_home("staging")
    scratch = Path(tempfile.mkdtemp(prefix="sluice-bench-staging-", dir=home))
    results: list[str] = []
    try:
        if not args.skip_local:
            line, details = bench_local(args.objects, args.reps, scratch)
            print("\n".join(details), flush=True)
            results.append(line)
        if not args.skip_s3:
            line, details = bench_s3(args.s3_objects, args.s3_reps, scratch)
            print("\n".join(details), flush=True)
            results.append(line)
    finally:
        remove_tree(home)  # the 1 GiB store and every staged copy
    for line in results:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
