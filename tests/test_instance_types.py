"""Instance types resolve to their real sizes, and per-job quotas behave like the service's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sluice.config import load_config, reset_config
from sluice.errors import ResourceLimitExceeded, SpecError
from sluice.jobs.instance_types import (
    DEFAULT_QUOTAS,
    INSTANCE_TYPES,
    InstanceType,
    check_quota,
    lookup,
)


@pytest.mark.parametrize(
    ("name", "vcpus", "memory", "gpus"),
    [
        ("ml.t3.medium", 2, 4, 0),
        ("ml.m4.10xlarge", 40, 160, 0),
        ("ml.m5.large", 2, 8, 0),
        ("ml.m5.xlarge", 4, 16, 0),
        ("ml.m5.2xlarge", 8, 32, 0),
        ("ml.m5.4xlarge", 16, 64, 0),
        ("ml.m5.12xlarge", 48, 192, 0),
        ("ml.m5.24xlarge", 96, 384, 0),
        ("ml.m5d.8xlarge", 32, 128, 0),
        ("ml.m6i.32xlarge", 128, 512, 0),
        ("ml.c4.xlarge", 4, 7.5, 0),
        ("ml.c4.8xlarge", 36, 60, 0),
        ("ml.c5.xlarge", 4, 8, 0),
        ("ml.c5.9xlarge", 36, 72, 0),
        ("ml.c5d.18xlarge", 72, 144, 0),
        ("ml.c6i.large", 2, 4, 0),
        ("ml.r5.xlarge", 4, 32, 0),
        ("ml.r6i.32xlarge", 128, 1024, 0),
        ("ml.g4dn.xlarge", 4, 16, 1),
        ("ml.g4dn.12xlarge", 48, 192, 4),
        ("ml.g5.48xlarge", 192, 768, 8),
        ("ml.p3.2xlarge", 8, 61, 1),
        ("ml.p3.16xlarge", 64, 488, 8),
    ],
)
def test_known_types_resolve_to_their_sizes(name: str, vcpus: int, memory: float, gpus: int) -> None:
    assert lookup(name) == InstanceType(name, vcpus, memory, gpus)


def test_required_families_are_all_present() -> None:
    families = {name.split(".")[1] for name in INSTANCE_TYPES}
    for family in ("t3", "m4", "m5", "m5d", "m6i", "c4", "c5", "c5d", "c6i", "r5", "r6i", "g4dn", "g5", "p3"):
        assert family in families


def test_table_names_are_real_sagemaker_instance_types() -> None:
    """Every name is in some instance-type enum of botocore's SageMaker model, so none is invented."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    real: set[str] = set()
    for shape_name in ("ProcessingInstanceType", "TrainingInstanceType", "TransformInstanceType",
                       "ProductionVariantInstanceType", "InstanceType", "AppInstanceType"):
        real |= set(model.shape_for(shape_name).enum)
    assert set(INSTANCE_TYPES) - real == set()


def test_local_is_the_whole_machine() -> None:
    local = lookup("local")
    assert local.name == "local"
    assert local.vcpus == os.cpu_count()
    assert local.memory_gib > 0
    assert local.gpus == 0


def test_local_gpu_is_refused_with_what_to_use_instead() -> None:
    with pytest.raises(ResourceLimitExceeded, match=r"'local_gpu'.*instance_type='local'"):
        lookup("local_gpu")


def test_gpu_types_are_accepted_for_scheduling(sluice_home: Path) -> None:
    assert check_quota("ml.g4dn.xlarge", 1, load_config()).gpus == 1


def test_unknown_type_is_refused_naming_close_matches() -> None:
    with pytest.raises(ResourceLimitExceeded) as info:
        lookup("ml.m5.xlarg")
    msg = str(info.value)
    assert "Unknown instance type 'ml.m5.xlarg'" in msg
    assert "'ml.m5.xlarge'" in msg
    assert "'local'" in msg


def test_missing_ml_prefix_suggests_the_prefixed_name() -> None:
    with pytest.raises(ResourceLimitExceeded, match=r"Did you mean 'ml\.c5\.xlarge'"):
        lookup("c5.xlarge")


def test_over_quota_is_refused_with_ask_quota_and_how_to_raise(sluice_home: Path) -> None:
    config = load_config()
    assert DEFAULT_QUOTAS["ml.m5.xlarge"] == 20
    with pytest.raises(ResourceLimitExceeded) as info:
        check_quota("ml.m5.xlarge", 25, config)
    msg = str(info.value)
    assert (
        "The account-level service limit 'ml.m5.xlarge for processing job usage' is 20 Instances, "
        "with current utilization of 0 Instances and a request delta of 25 Instances." in msg
    )
    assert f'[quotas] "ml.m5.xlarge" = 25 in {sluice_home / "config.toml"}' in msg


def test_gpu_quotas_are_smaller_by_default(sluice_home: Path) -> None:
    config = load_config()
    check_quota("ml.p3.2xlarge", 2, config)
    over = r"'ml\.p3\.2xlarge for training job usage' is 2 Instances"
    with pytest.raises(ResourceLimitExceeded, match=over):
        check_quota("ml.p3.2xlarge", 3, config, job_kind="training")
    check_quota("ml.g5.xlarge", 4, config)
    with pytest.raises(ResourceLimitExceeded, match="is 4 Instances"):
        check_quota("ml.g4dn.xlarge", 5, config)


def test_raising_the_quota_in_config_toml_lets_the_job_through(sluice_home: Path) -> None:
    (sluice_home / "config.toml").write_text('[quotas]\n"ml.m5.xlarge" = 25\n')
    reset_config()
    config = load_config()
    spec = check_quota("ml.m5.xlarge", 25, config)
    assert spec == InstanceType("ml.m5.xlarge", 4, 16, 0)
    with pytest.raises(ResourceLimitExceeded, match="is 25 Instances"):
        check_quota("ml.m5.xlarge", 26, config)


def test_local_has_a_generous_quota(sluice_home: Path) -> None:
    config = load_config()
    assert check_quota("local", 100, config).name == "local"
    with pytest.raises(ResourceLimitExceeded, match="'local for processing job usage' is 100 Instances"):
        check_quota("local", 101, config)


@pytest.mark.parametrize("count", [0, -1, True, 2.0])
def test_instance_count_must_be_a_positive_integer(sluice_home: Path, count: object) -> None:
    with pytest.raises(SpecError, match="positive integer"):
        check_quota("ml.m5.xlarge", count, load_config())  # type: ignore[arg-type]
