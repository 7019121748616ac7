"""Reports over the store: ``/selection-metrics`` (performance), ``/cost-report`` and the HTML
``/dashboard`` (inline CSS and SVG, no scripts or external resources)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse

from whisper_cascade.abtest import ABTests
from whisper_cascade.config import Prices, load_config
from whisper_cascade.errors import ConfigError, WhisperCascadeError
from whisper_cascade.report import (
    MAX_JOBS_PAGE,
    cost_report,
    page_jobs,
    parse_period,
    performance_report,
)
from whisper_cascade.report_html import render_dashboard

from .engine import Service
from .errors import ServiceError
from .guards import get_service
from .openai_format import jsonable

log = logging.getLogger(__name__)
router = APIRouter(tags=["reports"])

Period = Annotated[str, Query(description="e.g. 90s, 30m, 24h, 7d, 2w or all")]


def prices(service: Service) -> Prices:
    """The ``[prices]`` of the service's config (``--config``, else the usual search order)."""
    try:
        return load_config(service.settings.config).prices
    except ConfigError as exc:  # the server's file is broken, not the request
        raise ServiceError(500, "ConfigError", str(exc)) from exc


@router.get("/selection-metrics")
def selection_metrics(
    service: Annotated[Service, Depends(get_service)], period: Period = "24h"
) -> dict[str, Any]:
    """The performance report (model usage, escalation, quality, latency, trends)."""
    report = performance_report(service.store, parse_period(period))
    return jsonable({"success": True, **report})  # type: ignore[no-any-return]


@router.get("/cost-report")
def cost(
    service: Annotated[Service, Depends(get_service)],
    period: Period = "24h",
    limit: Annotated[int, Query(ge=1, le=MAX_JOBS_PAGE, description="jobs listed")] = 100,
    offset: Annotated[int, Query(ge=0, description="jobs skipped")] = 0,
) -> dict[str, Any]:
    """Per-job CPU time and cost at the config's prices, and savings against always-largest.

    Totals and per-model sums cover every job of the period; ``jobs`` is one page of them."""
    report = cost_report(service.store, prices(service), parse_period(period))
    page = page_jobs(report, limit, offset)
    return jsonable({"success": True, **page})  # type: ignore[no-any-return]


def _ab_results(service: Service) -> list[dict[str, Any]]:
    tests = ABTests(service.store)
    out = []
    for test in tests.list():
        try:
            out.append(tests.results(test.test_id))
        except WhisperCascadeError as exc:  # one broken test must not hide the page
            log.error("A/B test %s results: %s", test.test_id, exc)
    return out


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(
    service: Annotated[Service, Depends(get_service)], period: Period = "24h"
) -> HTMLResponse:
    """The HTML dashboard: performance, cost and every A/B test's results."""
    seconds = parse_period(period)
    page = render_dashboard(
        performance_report(service.store, seconds),
        cost_report(service.store, prices(service), seconds),
        _ab_results(service),
    )
    # An empty inline icon: otherwise browsers fetch /favicon.ico and log the 404 as an error.
    return HTMLResponse(page.replace("<head>", '<head><link rel="icon" href="data:,">', 1))
