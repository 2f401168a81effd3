"""``sluice.sklearn.processing.SKLearnProcessor``: ScriptProcessor in the scikit-learn environment."""

from __future__ import annotations

from typing import Any

from sluice import image_uris
from sluice.processing import ScriptProcessor
from sluice.session import Session

__all__ = ["SKLearnProcessor"]


class SKLearnProcessor(ScriptProcessor):
    """Runs one script with ``python3`` in the scikit-learn image's environment (SDK v2 signature)."""

    _framework_name = "sklearn"

    def __init__(
        self, framework_version: str, role: str | None = None, instance_type: str | None = None,
        instance_count: int | None = None, command: list[str] | None = None, volume_size_in_gb: int = 30,
        volume_kms_key: str | None = None, output_kms_key: str | None = None,
        max_runtime_in_seconds: int | None = None, base_job_name: str | None = None,
        sagemaker_session: Session | None = None, env: dict[str, str] | None = None,
        tags: list[dict[str, str]] | None = None, network_config: Any = None,
    ) -> None:
        session = sagemaker_session or Session()
        image_uri = image_uris.retrieve(self._framework_name, session.boto_region_name, version=framework_version,
                                        instance_type=instance_type)
        super().__init__(role, image_uri, command or ["python3"], instance_count, instance_type, volume_size_in_gb,
                         volume_kms_key, output_kms_key, max_runtime_in_seconds, base_job_name, session, env, tags,
                         network_config)
