"""Training job overhead: a one-instance script-mode training job vs running its script bare.

The script does what a tiny training script does (parse two hyperparameters, write a model file), so
the comparison is the whole script-mode contract — code bundle upload and unpack, config files, SM_*
variables, the sandbox, model.tar.gz — against ``subprocess.run([python, train.py, --epochs, 1, ...])``.

Target (issue 3): at most 1.5x.

    python bench/training_overhead.py [--reps N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _benchutil import fresh_home, median, remove_tree, spread, timed

TARGET = 1.5
SCRIPT = """\
import argparse, os
p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int)
p.add_argument("--lr", type=float)
a = p.parse_args()
model_dir = os.environ.get("SM_MODEL_DIR", os.path.dirname(os.path.abspath(__file__)))
open(os.path.join(model_dir, "model.txt"), "w").write(f"{a.epochs} {a.lr}")
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    opts = parser.parse_args()
    home = fresh_home("training")
    work = Path(tempfile.mkdtemp(prefix="sluice-bench-train-src-"))
    try:
        src = work / "src"
        src.mkdir()
        (src / "train.py").write_text(SCRIPT)
        (work / "data").mkdir()
        (work / "data" / "x.csv").write_text("1,2\n")

        import sluice
        from sluice.estimator import Estimator

        sess = sluice.Session()
        data = sess.upload_data(str(work / "data"), bucket=sess.default_bucket(), key_prefix="bench-data")

        def job() -> None:
            est = Estimator(image_uri=None, entry_point="train.py", source_dir=str(src),
                            role=sluice.get_execution_role(), instance_count=1, instance_type="ml.m5.xlarge",
                            hyperparameters={"epochs": 1, "lr": 0.1}, sagemaker_session=sess)
            est.fit({"train": data}, logs=False)

        def bare() -> None:
            subprocess.run([sys.executable, str(src / "train.py"), "--epochs", "1", "--lr", "0.1"], check=True)

        first = timed(job)
        bare()
        jobs, bares = [], []
        for _ in range(opts.reps):  # interleaved, so machine load hits both alike
            jobs.append(timed(job))
            bares.append(timed(bare))
        ratio = median(jobs) / median(bares)
        print(f"first job (one-time costs included): {first * 1e3:.1f} ms")
        print(f"sluice training job, {opts.reps} runs: {spread(jobs)}")
        print(f"bare script, {opts.reps} runs:          {spread(bares)}")
        print(f"overhead per job: {(median(jobs) - median(bares)) * 1e3:.1f} ms")
        verdict = "PASS" if ratio <= TARGET else "MISS"
        print(f"RESULT training_overhead: ratio={ratio:.2f} target=<={TARGET} {verdict}")
        return 0
    finally:
        remove_tree(work)
        remove_tree(home)
        os.environ.pop("SLUICE_HOME", None)


if __name__ == "__main__":
    sys.exit(main())
