"""sluice's main demo: the NDVI processing job of the SageMaker geospatial docs, run locally.

It writes Sentinel-2-like scenes, uploads them to the embedded object store, and runs ``ndvi.py`` — a
script written for a SageMaker container, with hard-coded ``/opt/ml`` paths and no sluice import — on
four instances at once with ``ShardedByS3Key``, so each instance sees only its shard. The job code is
the documentation's, with ``sagemaker`` changed to ``sluice``.

    python examples/ndvi/demo.py [--scenes N] [--size PIXELS] [--home DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=8, help="how many scenes to generate (default 8)")
    parser.add_argument("--size", type=int, default=512, help="scene width and height in pixels (default 512)")
    parser.add_argument("--home", default=None, help="sluice home to use (default: a fresh temporary one)")
    args = parser.parse_args(argv)
    os.environ["SLUICE_HOME"] = args.home or tempfile.mkdtemp(prefix="sluice-demo-")
    print(f"sluice home: {os.environ['SLUICE_HOME']}")

    sys.path.insert(0, str(HERE))
    from make_scenes import make_scenes

    workdir = Path(tempfile.mkdtemp(prefix="sluice-ndvi-"))
    scenes_dir = workdir / "scenes"
    make_scenes(scenes_dir, count=args.scenes, size=args.size)
    print(f"wrote {args.scenes} Sentinel-2-like scenes ({args.size}x{args.size}, 12 bands) to {scenes_dir}")
    os.chdir(HERE)  # code="ndvi.py" is resolved here, as in the docs

    # ---- from here on: the SageMaker geospatial example, with `sagemaker` changed to `sluice` ----------
    import sluice
    from sluice.processing import ProcessingInput, ProcessingOutput, ScriptProcessor

    sess = sluice.session.Session()
    bucket = sess.default_bucket()
    raw = sess.upload_data(str(scenes_dir), bucket=bucket, key_prefix="geospatial/raw")
    proc = ScriptProcessor(
        command=["python3"],
        image_uri="081189585635.dkr.ecr.us-west-2.amazonaws.com/sagemaker-geospatial-v1-0:latest",
        role=sluice.get_execution_role(),
        instance_count=4,
        instance_type="ml.m5.4xlarge",
        sagemaker_session=sess,
    )
    started = time.perf_counter()
    proc.run(
        code="ndvi.py",
        inputs=[ProcessingInput(source=raw, destination="/opt/ml/processing/input_data/",
                                s3_data_type="S3Prefix", s3_data_distribution_type="ShardedByS3Key")],
        outputs=[ProcessingOutput(source="/opt/ml/processing/output_data/",
                                  destination=f"s3://{bucket}/geospatial/ndvi")],
    )
    elapsed = time.perf_counter() - started
    desc = proc.jobs[-1].describe()
    # ------------------------------------------------------------------------------------------------------

    print(f"\njob {desc['ProcessingJobName']}: {desc['ProcessingJobStatus']} in {elapsed:.1f} s "
          f"on {desc['ProcessingResources']['ClusterConfig']['InstanceCount']} instances")
    from sluice.s3 import S3Downloader

    outputs = S3Downloader.list(f"s3://{bucket}/geospatial/ndvi", sagemaker_session=sess)
    print(f"{len(outputs)} objects in s3://{bucket}/geospatial/ndvi:")
    for uri in outputs:
        print(f"  {uri}")
    local = Path(os.environ["SLUICE_HOME"]) / "storage" / bucket / "geospatial" / "ndvi"
    print(f"\nthe embedded store keeps them as files: {local}")
    print(f"inspect the job: SLUICE_HOME={os.environ['SLUICE_HOME']} sluice jobs describe {desc['ProcessingJobName']}")
    return 0 if desc["ProcessingJobStatus"] == "Completed" else 1


if __name__ == "__main__":
    sys.exit(main())
