"""The model registry at its facade path (``sluice.model_registry``): see :mod:`sluice.serving.registry`."""

from sluice.serving.registry import (
    APPROVAL_STATUSES,
    create_model_package,
    create_model_package_group,
    describe_model_package,
    describe_model_package_group,
    list_model_package_groups,
    list_model_packages,
    update_approval_status,
)

__all__ = [
    "APPROVAL_STATUSES",
    "create_model_package",
    "create_model_package_group",
    "describe_model_package",
    "describe_model_package_group",
    "list_model_package_groups",
    "list_model_packages",
    "update_approval_status",
]
