"""The HTTP service (``whisper-cascade serve``): FastAPI over one shared Cascade.

``create_app(settings)`` builds the app; ``add_router(app, router)`` mounts another router
behind the API key. See docs/service.md.
"""

from __future__ import annotations

from .app import add_router, create_app
from .engine import Service, Target
from .errors import ServiceError
from .guards import get_service, require_api_key
from .settings import API_KEY_ENV, ServiceSettings

__all__ = [
    "API_KEY_ENV",
    "Service",
    "ServiceError",
    "ServiceSettings",
    "Target",
    "add_router",
    "create_app",
    "get_service",
    "require_api_key",
]
