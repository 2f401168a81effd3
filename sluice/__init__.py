"""sluice: SageMaker processing, training and pipelines, faithfully, on one machine or on Ray.

Change ``sagemaker`` to ``sluice`` in your imports::

    import sluice
    from sluice.processing import ScriptProcessor, ProcessingInput, ProcessingOutput
    sess = sluice.session.Session()
"""

from __future__ import annotations

from sluice import errors, image_uris, s3, session
from sluice.errors import SluiceError
from sluice.session import Session, get_execution_role

__version__ = "0.1.0"

__all__ = [
    "Session",
    "SluiceError",
    "__version__",
    "errors",
    "get_execution_role",
    "image_uris",
    "s3",
    "session",
]
