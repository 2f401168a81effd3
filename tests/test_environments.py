"""Image URIs resolve to Python environments, and an environment says what it is missing and how to fix it."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from sluice.config import Config, load_config, reset_config
from sluice.errors import SpecError
from sluice.image_uris import retrieve, supported_frameworks
from sluice.runtime.environments import Environment, parse_ecr_image_uri, resolve_image

NOT_INSTALLED = "sluice-test-distribution-that-is-not-installed"
GEOSPATIAL = "081189585635.dkr.ecr.us-west-2.amazonaws.com/sagemaker-geospatial-v1-0:latest"


def config_with(home: Path, toml: str) -> Config:
    (home / "config.toml").write_text(toml)
    reset_config()
    return load_config()


# -- image_uris.retrieve --------------------------------------------------------------------------------


def test_retrieve_returns_the_sdk_uris() -> None:
    assert (
        retrieve("sklearn", region="us-east-1", version="1.2-1")
        == "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    )
    assert (
        retrieve("xgboost", region="us-west-2", version="1.7-1")
        == "246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-xgboost:1.7-1"
    )
    assert (
        retrieve("sklearn", region="eu-west-1", version="1.0-1")
        == "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.0-1-cpu-py3"
    )
    assert (
        retrieve("xgboost", region="us-east-2", version="1.0-1")
        == "257758044811.dkr.ecr.us-east-2.amazonaws.com/sagemaker-xgboost:1.0-1-cpu-py3"
    )
    assert (
        retrieve("pytorch", region="us-east-1", version="2.1", py_version="py310")
        == "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1-cpu-py310"
    )
    assert (
        retrieve("pytorch", region="us-west-2", version="2.1", py_version="py310", image_scope="inference")
        == "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-inference:2.1-cpu-py310"
    )
    assert retrieve("sagemaker-geospatial", region="us-west-2") == GEOSPATIAL


def test_retrieve_picks_gpu_tags_for_gpu_instances() -> None:
    uri = retrieve("pytorch", region="us-east-1", version="2.1", instance_type="ml.g5.xlarge")
    assert uri.endswith("pytorch-training:2.1-gpu-py310")


def test_retrieve_defaults_region_from_config(sluice_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    reset_config()
    assert retrieve("sklearn", version="1.2-1").startswith("141502667606.dkr.ecr.eu-west-1.")


def test_retrieve_ignores_other_sdk_arguments() -> None:
    uri = retrieve(
        "sklearn", region="us-east-1", version="1.2-1", container_version=None, sagemaker_session=None
    )
    assert uri.endswith("sagemaker-scikit-learn:1.2-1-cpu-py3")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"framework": "spark", "version": "3.1"}, "Supported: sklearn, xgboost, pytorch"),
        ({"framework": "sklearn", "version": "0.99"}, "version: '0.99'. Supported versions: 0.20.0"),
        ({"framework": "sklearn", "version": None}, "Unsupported sklearn version: None"),
        ({"framework": "pytorch", "version": "2.1", "py_version": "py38"}, "Supported: py310"),
        ({"framework": "sklearn", "version": "1.2-1", "region": "mars-1"}, "Supported regions: "),
        ({"framework": "sklearn", "version": "1.2-1", "instance_type": "ml.p3.2xlarge"}, "CPU-only"),
        ({"framework": "pytorch", "version": "2.1", "image_scope": "serving"}, "training, inference"),
        ({"framework": "sklearn", "version": "1.2-1", "regoin": "us-east-1"}, "unexpected keyword"),
    ],
)
def test_retrieve_refuses_what_it_does_not_know(kwargs: dict[str, object], expected: str) -> None:
    kwargs.setdefault("region", "us-east-1")
    with pytest.raises(SpecError, match=re.escape(expected)):
        retrieve(**kwargs)  # type: ignore[arg-type]


# -- resolve_image -------------------------------------------------------------------------------------


@pytest.mark.parametrize("image", [None, "", "local"])
def test_no_image_means_the_interpreter_sluice_runs_in(image: str | None, sluice_home: Path) -> None:
    env = resolve_image(image, load_config())
    assert env.name == "sluice-python"
    assert env.python == sys.executable
    assert env.requirements == ()
    env.check()


@pytest.mark.parametrize(
    ("kwargs", "environment", "needs"),
    [
        ({"framework": "sklearn", "version": "1.2-1"}, "sklearn", "scikit-learn"),
        ({"framework": "xgboost", "version": "1.7-1"}, "xgboost", "xgboost | xgboost-cpu"),
        ({"framework": "pytorch", "version": "2.1", "py_version": "py310"}, "pytorch", "torch"),
        ({"framework": "pytorch", "version": "2.1", "image_scope": "inference"}, "pytorch", "torch"),
        ({"framework": "tensorflow", "version": "2.14"}, "tensorflow", "tensorflow"),
    ],
)
def test_retrieved_uris_resolve_to_their_environment(
    sluice_home: Path, kwargs: dict[str, str], environment: str, needs: str
) -> None:
    for region in ("us-east-1", "us-east-2", "us-west-2", "eu-west-1"):
        uri = retrieve(region=region, **kwargs)  # type: ignore[arg-type]
        env = resolve_image(uri, load_config())
        assert env.name == environment
        assert needs in env.requirements
        assert env.python == sys.executable
        assert env.image_uri == uri


def test_geospatial_image_resolves(sluice_home: Path) -> None:
    env = resolve_image(GEOSPATIAL, load_config())
    assert env.name == "geospatial"
    assert env.requirements == ("rasterio", "numpy", "pillow")


def test_china_partition_uris_are_recognised(sluice_home: Path) -> None:
    uri = "450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-scikit-learn:1.2-1-cpu-py3"
    assert resolve_image(uri, load_config()).name == "sklearn"
    assert parse_ecr_image_uri(uri) == {
        "account": "450853457545",
        "region": "cn-north-1",
        "repository": "sagemaker-scikit-learn",
        "tag": "1.2-1-cpu-py3",
        "digest": None,
    }


def test_unknown_image_is_refused_with_the_toml_to_map_it(sluice_home: Path) -> None:
    with pytest.raises(SpecError) as info:
        resolve_image("my-registry/my-image:1.0", load_config())
    msg = str(info.value)
    assert "'my-registry/my-image:1.0'" in msg
    assert "not a SageMaker framework image sluice knows" in msg
    assert str(sluice_home / "config.toml") in msg
    snippet = msg.split("config.toml:\n\n", 1)[1]
    # The hint is valid TOML that maps exactly this image.
    assert tomllib.loads(snippet)["images"]["my-registry/my-image:1.0"]["python"] == sys.executable


def test_unknown_ecr_repository_is_named(sluice_home: Path) -> None:
    with pytest.raises(SpecError, match="ECR repository 'my-team-image' is not a SageMaker framework image"):
        resolve_image("123456789012.dkr.ecr.us-east-1.amazonaws.com/my-team-image:3", load_config())


def test_config_mapped_image_resolves(sluice_home: Path) -> None:
    config = config_with(
        sluice_home,
        f'[images]\n"my-registry/my-image:1.0" = {{ python = "{sys.executable}", '
        'requirements = ["packaging"] }\n',
    )
    env = resolve_image("my-registry/my-image:1.0", config)
    assert env == Environment(
        name="my-image",
        python=sys.executable,
        requirements=("packaging",),
        description="user-mapped image my-registry/my-image:1.0",
        image_uri="my-registry/my-image:1.0",
    )
    env.check()


def test_config_mapping_wins_over_the_framework_table(sluice_home: Path) -> None:
    uri = retrieve("sklearn", region="us-east-1", version="1.2-1")
    config = config_with(sluice_home, f'[images]\n"{uri}" = {{ name = "my-sklearn", requirements = [] }}\n')
    env = resolve_image(uri, config)
    assert env.name == "my-sklearn"
    assert env.python == sys.executable


def test_missing_requirement_is_detected_with_a_pip_hint(sluice_home: Path) -> None:
    config = config_with(
        sluice_home,
        f'[images]\n"my-registry/needs-more:2" = {{ requirements = ["packaging", "{NOT_INSTALLED}>=1.0"] }}'
        "\n",
    )
    env = resolve_image("my-registry/needs-more:2", config)
    assert env.missing_requirements() == (f"{NOT_INSTALLED}>=1.0",)
    with pytest.raises(SpecError) as info:
        env.check()
    msg = str(info.value)
    assert "Image 'my-registry/needs-more:2' maps to environment 'needs-more', which needs " in msg
    assert f"which needs {NOT_INSTALLED}>=1.0, not installed for {sys.executable}" in msg
    assert f"-m pip install '{NOT_INSTALLED}>=1.0'" in msg


def test_wrong_installed_version_counts_as_missing() -> None:
    env = Environment("pinned", sys.executable, ("packaging<1", "pytest>=1"))
    (missing,) = env.missing_requirements()
    assert missing.startswith("packaging<1 (installed: ")


def test_requirements_behind_false_markers_are_ignored() -> None:
    env = Environment("markers", sys.executable, (f'{NOT_INSTALLED}; python_version < "3"',))
    assert env.missing_requirements() == ()


def test_another_interpreter_is_asked_in_a_subprocess(tmp_path: Path) -> None:
    wrapper = tmp_path / "python-wrapper"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    env = Environment("wrapped", str(wrapper), ("packaging", NOT_INSTALLED))
    assert env.missing_requirements() == (NOT_INSTALLED,)


def test_missing_interpreter_is_refused(tmp_path: Path) -> None:
    env = Environment("gone", str(tmp_path / "no-such-python"), ("numpy",), image_uri="my/img:1")
    with pytest.raises(SpecError, match=r"whose Python .*no-such-python.* does not exist"):
        env.check()


def test_bad_config_mappings_are_refused(sluice_home: Path) -> None:
    config = config_with(sluice_home, '[images]\n"a/b:1" = { pyhton = "/usr/bin/python3" }\n')
    with pytest.raises(SpecError, match=r"unknown keys \['pyhton'\]; allowed keys: python, requirements"):
        resolve_image("a/b:1", config)
    config = config_with(sluice_home, '[images]\n"a/b:1" = { requirements = ["numpy >>> 1"] }\n')
    with pytest.raises(SpecError, match="not a valid pip requirement"):
        resolve_image("a/b:1", config)
    with pytest.raises(SpecError, match=r"\[images\] entry 'a/b:1' must be a table"):
        config_with(sluice_home, '[images]\n"a/b:1" = "python3"\n')


def test_every_retrievable_framework_resolves(sluice_home: Path) -> None:
    config = load_config()
    for framework, versions in supported_frameworks().items():
        region = "us-west-2"
        uri = retrieve(framework, region=region, version=versions[-1])
        assert resolve_image(uri, config).name  # no SpecError: every retrieve() URI is runnable


def test_a_requirement_with_alternatives_is_met_by_any_of_them(sluice_home: Path) -> None:
    from sluice.runtime.environments import Environment

    either = Environment("either", sys.executable, ("no-such-dist-xyz | numpy", "pandas"))
    assert either.missing_requirements() == ()
    neither = Environment("neither", sys.executable, ("no-such-dist-xyz | no-such-dist-abc",))
    assert neither.missing_requirements() == ("no-such-dist-xyz or no-such-dist-abc",)
    with pytest.raises(SpecError, match="pip install no-such-dist-xyz"):
        neither.check()
