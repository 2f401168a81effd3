"""Image classification in Pipe mode from an augmented manifest, on two instances, with the SDK's code.

    python examples/image_classification/demo.py [--images N] [--epochs E] [--home DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--home", default=None)
    args = parser.parse_args(argv)
    os.environ["SLUICE_HOME"] = args.home or tempfile.mkdtemp(prefix="sluice-imgcls-")
    sys.path.insert(0, str(HERE))
    from make_dataset import make_dataset, make_validation

    import sluice
    from sluice.estimator import Estimator
    from sluice.inputs import ShuffleConfig, TrainingInput

    sess = sluice.Session()
    bucket = sess.default_bucket()
    manifest_uri = make_dataset(sess.store, bucket, "shapes", args.images)
    val_uri = make_validation(sess.store, bucket, "shapes", max(10, args.images // 5))
    print(f"{args.images} images and their augmented manifest at {manifest_uri}; validation CSV at {val_uri}")

    # ---- the code, with `sagemaker` changed to `sluice` --------------------------------------
    role = sluice.get_execution_role()
    est = Estimator(image_uri=sluice.image_uris.retrieve("sklearn", region="us-east-1", version="1.2-1"),
        entry_point="train.py", source_dir=str(HERE / "src"), role=role, instance_count=2,
        instance_type="ml.m5.xlarge", hyperparameters={"epochs": args.epochs, "lr": 0.5},
        output_path=f"s3://{bucket}/models",
        metric_definitions=[{"Name": "train:accuracy", "Regex": "train:accuracy=([0-9.]+)"},
                            {"Name": "val:accuracy", "Regex": "val:accuracy=([0-9.]+)"}],
        input_mode="Pipe", sagemaker_session=sess)
    est.fit({"train": TrainingInput(manifest_uri, s3_data_type="AugmentedManifestFile",
              attribute_names=["source-ref", "class"], record_wrapping="RecordIO", input_mode="Pipe",
              distribution="ShardedByS3Key", shuffle_config=ShuffleConfig(7)),
             "validation": TrainingInput(val_uri, content_type="text/csv")})
    print(est.model_data)
    desc = est.latest_training_job.describe()
    # -----------------------------------------------------------------------------------------------------
    print(f"{desc['TrainingJobName']}: {desc['TrainingJobStatus']}; final metrics {desc['FinalMetricDataList']}")
    return 0 if desc["TrainingJobStatus"] == "Completed" else 1


if __name__ == "__main__":
    sys.exit(main())
