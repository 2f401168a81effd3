"""Per-step overhead of a pipeline: 50 empty processing steps in one pipeline vs 50 bare runs of the script.

Why: the pipelines issue's target is that running steps as a pipeline costs at most 1.5x running the same
scripts bare. "Bare" means what it means in ``job_overhead.py``: ``subprocess.run([python, empty.py])``,
the floor any way of running the script must pay. So the ratio covers everything a user's pipeline code
pays per step: the processing job itself (request, sandbox, /opt/ml, records) *and* the pipeline layer
(definition, upsert, scheduling, expression resolution, step records in the metadata store).

Shape (``--shape``):

- ``chain`` (default): step *i* ``DependsOn`` step *i-1*. Every step's scheduling latency is on the critical
  path and nothing overlaps, so total / 50 is the per-step cost. Compared with 50 bare runs one after
  another, which is like for like: a chain runs one step at a time whatever ``MaxParallelExecutionSteps``
  says (it is left at its default).
- ``fan``: 50 independent steps under ``ParallelismConfiguration(--parallel)`` (default 2, the cores here),
  compared with 50 bare runs through a pool of the same size. This shows the scheduler keeping its slots
  busy; the chain is the stricter measure.

What is timed for the pipeline: building the 50 ``ProcessingStep``s (``ScriptProcessor.run`` under a
``PipelineSession``), ``Pipeline(...)``, ``upsert`` (which emits and validates the definition),
``start`` and ``wait``. For context (not the ratio) it also times 50 standalone processing jobs of the same
script through the same API, ``ScriptProcessor.run(wait=True)``, with the same parallelism: pipeline /
standalone is what the pipeline layer alone adds. The three sides alternate ``--reps`` times after a
3-step warm-up pipeline; the ratio is of the medians.

    python bench/pipeline_step_overhead.py [--steps 50] [--shape chain|fan] [--parallel 2] [--reps 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _benchutil import fresh_home, median, remove_tree, result_line

NAME = "pipeline_step_overhead"
TARGET = 1.5  # pipeline wall time / bare subprocess wall time, at most


class Bench:
    """The shared set-up: sessions, the empty script, and the three ways of running it ``steps`` times."""

    def __init__(self, workdir: Path, steps: int, shape: str, parallel: int) -> None:
        import sluice
        from sluice.image_uris import retrieve
        from sluice.session import Session
        from sluice.workflow.pipeline_context import PipelineSession

        self.steps, self.shape, self.parallel = steps, shape, parallel
        self.session = Session()
        self.pipeline_session = PipelineSession()
        self.role = sluice.get_execution_role()
        self.image_uri = retrieve("sklearn", region=self.session.boto_region_name, version="1.2-1")
        self.script = workdir / "empty.py"
        self.script.write_text("")
        self.phases: dict[str, float] = {}
        self.last_execution: Any = None
        self.start_wall = 0.0
        self.standalone_jobs: list[str] = []

    def _processor(self, session: Any) -> Any:
        from sluice.processing import ScriptProcessor

        return ScriptProcessor(role=self.role, image_uri=self.image_uri, command=["python3"], instance_count=1,
                               instance_type="ml.m5.xlarge", sagemaker_session=session)

    def pipeline(self, steps: int | None = None) -> None:
        """What a user's code does: build the steps, the pipeline, upsert, start, wait; phases kept."""
        from sluice.workflow.parallelism_config import ParallelismConfiguration
        from sluice.workflow.pipeline import Pipeline
        from sluice.workflow.steps import ProcessingStep

        count = steps or self.steps
        t0 = time.perf_counter()
        processor = self._processor(self.pipeline_session)
        built: list[ProcessingStep] = []
        for i in range(count):
            after = [built[-1]] if self.shape == "chain" and built else None
            built.append(ProcessingStep(f"Empty{i:03d}", step_args=processor.run(code=str(self.script)),
                                        depends_on=after))
        parallelism = ParallelismConfiguration(self.parallel) if self.shape == "fan" else None  # chain: default 50
        pipeline = Pipeline(name=f"bench-{self.shape}", steps=built, sagemaker_session=self.pipeline_session,
                            parallelism_config=parallelism)
        t1 = time.perf_counter()
        pipeline.upsert(role_arn=self.role)
        t2 = time.perf_counter()
        self.start_wall = time.time()
        execution = pipeline.start()
        t3 = time.perf_counter()
        execution.wait()
        t4 = time.perf_counter()
        status = execution.describe()["PipelineExecutionStatus"]
        assert status == "Succeeded", execution.describe().get("FailureReason")
        self.phases = {"build steps + Pipeline()": t1 - t0, "upsert (definition + record)": t2 - t1,
                       "start (checks + execution record)": t3 - t2, "run until wait() returns": t4 - t3}
        self.last_execution = execution

    def _pool(self, fn: Callable[[int], None]) -> None:
        if self.shape == "chain":
            for i in range(self.steps):
                fn(i)
            return
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            list(pool.map(fn, range(self.steps)))

    def bare(self) -> None:
        """The baseline: the same script, ``subprocess.run`` ``steps`` times, one after another or in a pool."""
        self._pool(lambda _: subprocess.run([sys.executable, str(self.script)], check=True))

    def standalone(self) -> None:
        """Context only: the same script as ``steps`` standalone processing jobs, same parallelism."""
        names: list[str] = []

        def job(_: int) -> None:
            processor = self._processor(self.session)
            processor.run(code=str(self.script), wait=True, logs=False)
            names.append(processor.latest_job.job_name)
            status = self.session.describe_processing_job(names[-1])["ProcessingJobStatus"]
            assert status == "Completed", status

        self._pool(job)
        self.standalone_jobs = names


def step_breakdown(bench: Bench) -> list[str]:
    """Where a pipeline step's time goes, from the records of the last execution (times are wall clock)."""
    execution = bench.last_execution
    records = sorted(execution.step_records().values(), key=lambda r: r["StartTime"])
    jobs = {row.name.lower(): row for row in bench.session.metadata.list_jobs(
        kind="ProcessingJob", name_contains=execution.execution_id, limit=10 * len(records))}
    step_s, job_s, around_job, gaps = [], [], [], []
    for i, rec in enumerate(records):
        step_s.append(rec["EndTime"] - rec["StartTime"])
        arn = rec.get("Metadata", {}).get("ProcessingJob", {}).get("Arn", "")
        job = jobs.get(arn.rsplit("/", 1)[-1])
        if job is not None:
            job_s.append(job.updated_at - job.created_at)
            around_job.append(step_s[-1] - job_s[-1])
        if i:
            gaps.append(rec["StartTime"] - records[i - 1]["EndTime"])

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1e3:7.2f} ms" if values else "    n/a"

    lines = [f"  per step (median of {len(records)} steps of the last execution):",
             f"    {'step start -> step end':<44} {ms(step_s)}",
             f"    {'  of which the job (record created -> final)':<44} {ms(job_s)}",
             f"    {'  of which around the job (resolve, record)':<44} {ms(around_job)}"]
    if bench.shape == "chain":
        lines.append(f"    {'step end -> next step start (scheduler)':<44} {ms(gaps)}")
    if bench.standalone_jobs:
        alone = [row.updated_at - row.created_at for row in
                 (bench.session.metadata.get_job("ProcessingJob", name) for name in bench.standalone_jobs) if row]
        lines.append(f"    {'a standalone job (record created -> final)':<44} {ms(alone)}")
    first_start = (records[0]["StartTime"] - bench.start_wall) * 1e3
    lines.append(f"    {'start() -> first step starts':<44} {first_start:7.2f} ms")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="steps in the pipeline (and bare runs)")
    parser.add_argument("--shape", choices=("chain", "fan"), default="chain",
                        help="chain: each step depends on the previous one; fan: all independent")
    parser.add_argument("--parallel", type=int, default=2,
                        help="fan only: MaxParallelExecutionSteps, and the baseline's pool size")
    parser.add_argument("--reps", type=int, default=5, help="repetitions of each side to take the median of")
    parser.add_argument("--skip-standalone", action="store_true", help="do not time the standalone jobs")
    args = parser.parse_args()
    if args.parallel < 1:
        parser.error(f"--parallel must be at least 1, not {args.parallel}")

    home = fresh_home("pipeline-steps")
    workdir = Path(tempfile.mkdtemp(prefix="sluice-bench-pipeline-steps-"))
    try:
        t_first = time.perf_counter()
        bench = Bench(workdir, args.steps, args.shape, args.parallel)
        bench.pipeline(steps=3)  # warm-up: imports, the bwrap probe, the database, the definition machinery
        first = time.perf_counter() - t_first
        bench.bare()
        if not args.skip_standalone:
            bench.standalone()

        ours: list[float] = []
        base: list[float] = []
        alone: list[float] = []
        phases: list[dict[str, float]] = []
        for _ in range(args.reps):  # interleaved, so drift on a shared machine hits every side alike
            start = time.perf_counter()
            bench.pipeline()
            ours.append(time.perf_counter() - start)
            phases.append(bench.phases)
            start = time.perf_counter()
            bench.bare()
            base.append(time.perf_counter() - start)
            if not args.skip_standalone:
                start = time.perf_counter()
                bench.standalone()
                alone.append(time.perf_counter() - start)
        ratio = median(ours) / median(base)

        n = args.steps
        where = "one after another" if args.shape == "chain" else f"{args.parallel} at a time"
        print(f"shape: {args.shape} of {n} empty processing steps ({where}); image {bench.image_uri}")
        print(f"warm-up (3-step pipeline, one-time costs included): {first * 1e3:.0f} ms")

        def line(label: str, values: list[float]) -> str:
            return (f"{label:<34} median {median(values):6.3f} s  ({median(values) / n * 1e3:5.1f} ms per step; "
                    f"runs {', '.join(f'{v:.3f}' for v in values)})")

        print(line("pipeline (build..wait):", ours))
        print(line(f"{n} bare subprocess runs:", base))
        if alone:
            print(line(f"{n} standalone processing jobs:", alone))
        print(f"overhead per step over bare: {(median(ours) - median(base)) / n * 1e3:.1f} ms; ratio of the fastest "
              f"runs {min(ours) / min(base):.2f} (load from other processes only ever adds time)")
        if alone:
            print(f"pipeline layer alone (pipeline / standalone jobs): {median(ours) / median(alone):.2f}x, "
                  f"{(median(ours) - median(alone)) / n * 1e3:.1f} ms per step")
        print(f"  pipeline phases (median of {len(phases)}):")
        for key in phases[0]:
            print(f"    {key:<44} {median([p[key] for p in phases]) * 1e3:7.1f} ms")
        try:  # reads stored records whose layout other work may change; the ratio does not depend on it
            print("\n".join(step_breakdown(bench)))
        except (AttributeError, KeyError, TypeError) as exc:
            print(f"  step breakdown unavailable (record layout changed: {exc!r})")
        print(result_line(NAME, ratio, "<=", TARGET))
    finally:
        remove_tree(workdir)
        remove_tree(home)
    return 0


if __name__ == "__main__":
    sys.exit(main())
