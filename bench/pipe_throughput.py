"""Pipe-mode throughput: RecordIO-wrapped objects from the embedded store through a per-epoch FIFO,
against reading the same objects straight off disk.

Both readers are a separate Python process, as a training script would be, reading 1 MiB at a time
and discarding the bytes. The sluice side goes through the real channel planner and delivery (the
feeder thread writing RecordIO records into ``train_0``).

Target (issue 3): at least 0.8x the direct-read throughput.

    python bench/pipe_throughput.py [--gib 2] [--object-mib 8]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _benchutil import fresh_home, remove_tree

TARGET = 0.8
READER = """
import sys, time
path = sys.argv[1]
total = 0
start = time.perf_counter()
for name in sys.argv[1:]:
    with open(name, "rb", buffering=0) as fh:
        while chunk := fh.read(1 << 20):
            total += len(chunk)
print(total, time.perf_counter() - start)
"""


def drop_caches() -> None:
    with contextlib.suppress(OSError):  # not root: every run is warm-cache, which favours neither side
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--object-mib", type=int, default=8)
    opts = parser.parse_args()
    home = fresh_home("pipe")
    work = Path(tempfile.mkdtemp(prefix="sluice-bench-pipe-"))
    try:
        from sluice.channels.delivery import start_delivery
        from sluice.channels.plan import plan_channel
        from sluice.channels.spec import ChannelSpec, InputMode, RecordWrapping
        from sluice.config import current_config
        from sluice.storage import store_for

        store = store_for(current_config())
        store.create_bucket("bench")
        size = opts.object_mib << 20
        count = int(opts.gib * (1 << 30)) // size
        block = bytes(range(256)) * (size // 256)
        for i in range(count):
            store.put("bench", f"pipe/obj-{i:05d}", block)
        total = count * size
        files = [str(store.local_path("bench", f"pipe/obj-{i:05d}")) for i in range(count)]

        drop_caches()
        direct = subprocess.run([sys.executable, "-c", READER, *files], capture_output=True, text=True, check=True)
        direct_bytes, direct_s = direct.stdout.split()
        assert int(direct_bytes) == total

        spec = ChannelSpec("train", "s3://bench/pipe/", "/opt/ml/input/data/train", input_mode=InputMode.PIPE,
                           record_wrapping=RecordWrapping.RECORDIO, pipe_per_epoch=True)
        plan = plan_channel(spec, store, 1)
        drop_caches()
        started = time.perf_counter()
        delivery = start_delivery(plan.for_instance(0), store, work / "train", link_ok=True)
        piped = subprocess.run([sys.executable, "-c", READER, str(work / "train_0")], capture_output=True, text=True,
                               check=True)
        elapsed = time.perf_counter() - started
        delivery.close()
        piped_bytes, _ = piped.stdout.split()
        overhead = int(piped_bytes) - total
        assert 0 <= overhead <= count * 12, f"unexpected byte count {piped_bytes}"  # RecordIO headers + padding

        direct_rate = total / float(direct_s) / (1 << 20)
        pipe_rate = total / elapsed / (1 << 20)
        ratio = pipe_rate / direct_rate
        print(f"{count} objects x {opts.object_mib} MiB = {total / (1 << 30):.2f} GiB, RecordIO-wrapped")
        print(f"direct read off disk: {float(direct_s):.2f} s ({direct_rate:.0f} MiB/s)")
        print(f"through the Pipe FIFO: {elapsed:.2f} s ({pipe_rate:.0f} MiB/s), incl. planning the epoch")
        verdict = "PASS" if ratio >= TARGET else "MISS"
        print(f"RESULT pipe_throughput: ratio={ratio:.2f} target=>={TARGET} {verdict}")
        return 0
    finally:
        remove_tree(work)
        remove_tree(home)


if __name__ == "__main__":
    sys.exit(main())
