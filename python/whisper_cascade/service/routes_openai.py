"""``POST /v1/audio/transcriptions``: the OpenAI audio transcription API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from whisper_cascade.results import CascadeResult

from .ab import enrollment, transcribe_routed
from .engine import Service
from .errors import ServiceError
from .guards import get_service, read_upload
from .openai_format import GRANULARITIES, RESPONSE_FORMATS, render_text, verbose_json

router = APIRouter(prefix="/v1", tags=["openai"])

_ENGLISH = {"en", "english"}


def _bad(message: str) -> ServiceError:
    return ServiceError(400, "invalid_request_error", message)


@router.post("/audio/transcriptions")
async def create_transcription(
    file: Annotated[UploadFile, File()],
    model: Annotated[str, Form()],
    service: Annotated[Service, Depends(get_service)],
    language: Annotated[str | None, Form()] = None,
    prompt: Annotated[str | None, Form()] = None,
    temperature: Annotated[float, Form()] = 0.0,
    response_format: Annotated[str, Form()] = "json",
    timestamp_granularities: Annotated[
        list[str] | None, Form(alias="timestamp_granularities[]")
    ] = None,
    x_session_id: Annotated[str | None, Header()] = None,
    x_ab_test: Annotated[str | None, Header()] = None,
) -> Response:
    """Transcribe with the cascade; ``model`` names a preset, a ladder or a model
    (``whisper-1``: the service default). ``prompt`` is accepted and not used; decoding is
    greedy whatever ``temperature`` says. With ``X-AB-Test`` and ``X-Session-Id`` headers the
    session's arm picks the target instead of ``model``; ``ab`` (JSON) or the ``X-AB-Test-Id``
    and ``X-AB-Arm`` headers name the test and the arm."""
    if response_format not in RESPONSE_FORMATS:
        raise _bad(f"response_format must be one of {', '.join(RESPONSE_FORMATS)}")
    if language is not None and language.strip().lower() not in _ENGLISH:
        raise _bad(f"language {language!r} is not supported (the models are English-only)")
    if not 0.0 <= temperature <= 1.0:
        raise _bad("temperature must be between 0 and 1")
    granularities = timestamp_granularities or ["segment"]
    for g in granularities:
        if g not in GRANULARITIES:
            raise _bad(f"timestamp_granularities[] must be among {', '.join(GRANULARITIES)}")
    if "word" in granularities and response_format != "verbose_json":
        raise _bad("word timestamps need response_format=verbose_json")
    del prompt  # accepted for compatibility
    target = service.target(model=model)
    data, name = await read_upload(file, service.settings.max_upload_bytes)

    def work() -> tuple[CascadeResult, dict[str, Any] | None]:
        enrolled = enrollment(service, test_id=x_ab_test, session_id=x_session_id, implicit=False)
        if enrolled is None:
            return service.transcribe(data, name, target), None
        routed = transcribe_routed(service, data, name, enrolled)
        return routed.result, routed.ab()

    result, ab = await service.run(work)
    headers = {"X-AB-Test-Id": ab["test_id"], "X-AB-Arm": ab["arm"]} if ab else None
    if response_format in ("json", "verbose_json"):
        if response_format == "json":
            doc: dict[str, Any] = {"text": result.text}
        else:
            doc = verbose_json(result, words="word" in granularities)
        if ab is not None:
            doc["ab"] = ab
        return JSONResponse(doc, headers=headers)
    return PlainTextResponse(render_text(result, response_format), headers=headers)
