"""A/B test endpoints: ``/ab-tests`` (create, list), ``/ab-tests/{id}`` (read, start, stop,
results). Arm targets must be registered preset, ladder or model names, never paths."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from whisper_cascade.abtest import ABTest, ABTests
from whisper_cascade.errors import WhisperCascadeError

from .ab import ab_error, check_target
from .engine import Service
from .guards import get_service
from .openai_format import jsonable

router = APIRouter(prefix="/ab-tests", tags=["ab"])


class ABTestRequest(BaseModel):
    """The body of ``POST /ab-tests`` (see :class:`whisper_cascade.abtest.ABTestConfig`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str
    arms: dict[str, str]
    split: dict[str, float] | None = None
    metric: str = "score"
    direction: str | None = None
    alpha: float = 0.05
    min_samples: int = 100
    max_samples: int | None = None
    max_duration_s: float | None = None


def _tests(service: Service) -> ABTests:
    return ABTests(service.store)


def _doc(test: ABTest) -> dict[str, Any]:
    return jsonable({"success": True, **test.to_dict()})  # type: ignore[no-any-return]


@contextmanager
def _as_http_errors() -> Iterator[None]:
    """Turn a library error into the route's HTTP error (:func:`ab_error`)."""
    try:
        yield
    except WhisperCascadeError as exc:
        raise ab_error(exc) from exc


@router.post("", status_code=201)
def create_test(
    body: ABTestRequest, service: Annotated[Service, Depends(get_service)]
) -> dict[str, Any]:
    """Define a test (status ``created``); every arm target must be a registered name."""
    for target in body.arms.values():
        check_target(service, target)
    tests = _tests(service)
    with _as_http_errors():
        test_id = tests.create(
            body.name,
            body.arms,
            split=body.split,
            metric=body.metric,
            direction=body.direction,
            alpha=body.alpha,
            min_samples=body.min_samples,
            max_samples=body.max_samples,
            max_duration_s=body.max_duration_s,
        )
        test = tests.get(test_id)
    return _doc(test)


@router.get("")
def list_tests(service: Annotated[Service, Depends(get_service)]) -> dict[str, Any]:
    """Every test, oldest first."""
    with _as_http_errors():
        tests = _tests(service).list()
    return jsonable({"success": True, "tests": [t.to_dict() for t in tests]})  # type: ignore[no-any-return]


@router.get("/{test_id}")
def get_test(test_id: str, service: Annotated[Service, Depends(get_service)]) -> dict[str, Any]:
    """One test (404 when unknown)."""
    with _as_http_errors():
        test = _tests(service).get(test_id)
    return _doc(test)


@router.post("/{test_id}/start")
def start_test(test_id: str, service: Annotated[Service, Depends(get_service)]) -> dict[str, Any]:
    """Start or resume a test (409 when completed)."""
    with _as_http_errors():
        test = _tests(service).start(test_id)
    return _doc(test)


@router.post("/{test_id}/stop")
def stop_test(test_id: str, service: Annotated[Service, Depends(get_service)]) -> dict[str, Any]:
    """Stop a test: no assignments or observations until started again (409 when completed)."""
    with _as_http_errors():
        test = _tests(service).stop(test_id)
    return _doc(test)


@router.get("/{test_id}/results")
def test_results(test_id: str, service: Annotated[Service, Depends(get_service)]) -> dict[str, Any]:
    """Per-arm metrics, comparisons and the winner (``whisper_cascade.abreport``)."""
    with _as_http_errors():
        results = _tests(service).results(test_id)
    return jsonable({"success": True, **results})  # type: ignore[no-any-return]
