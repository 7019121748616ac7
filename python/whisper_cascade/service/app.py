"""The FastAPI app factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI

from whisper_cascade.store import Store

from .engine import Service
from .errors import install_error_handlers
from .guards import RequestGuard, require_api_key
from .routes_ab import router as ab_router
from .routes_jobs import router as jobs_router
from .routes_openai import router as openai_router
from .routes_ops import health_router, metrics_router
from .routes_reports import router as reports_router
from .routes_transcribe import router as transcribe_router
from .settings import ServiceSettings


def add_router(app: FastAPI, router: APIRouter, *, public: bool = False) -> None:
    """Mount ``router``; unless ``public`` its routes need the API key (when one is set).

    Routes reach the shared state with ``Depends(get_service)``.
    """
    deps = [] if public else [Depends(require_api_key)]
    app.include_router(router, dependencies=deps)


def create_app(
    settings: ServiceSettings | None = None,
    *,
    store: Store | None = None,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The service app: one shared :class:`Service` (``app.state.service``) and its routes.

    ``store`` overrides opening ``settings.db``; ``routers`` are extra (authenticated) routers.
    The Service is closed when the app shuts down.
    """
    settings = settings or ServiceSettings()
    service = Service(settings, store=store)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            service.close()

    app = FastAPI(
        title="whisper-cascade",
        summary="Speech to text with a cascade of Whisper models",
        lifespan=lifespan,
    )
    app.state.service = service
    install_error_handlers(app)
    app.add_middleware(RequestGuard, service=service)
    add_router(app, health_router, public=True)
    builtin = (metrics_router, openai_router, transcribe_router, jobs_router, ab_router)
    for router in (*builtin, reports_router, *routers):
        add_router(app, router)
    return app
