"""``GET /health`` (open, for load balancers) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from .engine import Service
from .guards import get_service
from .metrics import CONTENT_TYPE

health_router = APIRouter(tags=["ops"])
metrics_router = APIRouter(tags=["ops"])


@health_router.get("/health")
async def health(service: Annotated[Service, Depends(get_service)]) -> dict[str, Any]:
    """Status (ok or degraded), breakers, resident models, queue depth and store reachability."""
    return await asyncio.to_thread(service.health)


@metrics_router.get("/metrics")
def metrics(service: Annotated[Service, Depends(get_service)]) -> Response:
    """Every ``whisper_cascade_*`` metric in the Prometheus text format."""
    m = service.metrics
    m.observe_breakers(service.cascade.health()["breakers"])
    queue = service.queue_state()
    m.queue_depth.set(queue["depth"])
    m.running.set(queue["running"])
    return Response(m.exposition(), media_type=CONTENT_TYPE)
