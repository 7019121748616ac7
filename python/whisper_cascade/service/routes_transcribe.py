"""``POST /transcribe``, ``POST /intelligent-select`` and ``GET /models``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, UploadFile

from whisper_cascade.results import CascadeResult

from .ab import enrollment, transcribe_routed
from .engine import Service, resolve_present, success_body
from .errors import ServiceError
from .guards import get_service, read_upload
from .openai_format import jsonable

router = APIRouter(tags=["cascade"])


@router.post("/transcribe")
async def transcribe(
    file: Annotated[UploadFile, File()],
    service: Annotated[Service, Depends(get_service)],
    preset: Annotated[str | None, Form()] = None,
    ladder: Annotated[str | None, Form()] = None,
    session_id: Annotated[str | None, Form()] = None,
    ab_test: Annotated[str | None, Form()] = None,
    x_session_id: Annotated[str | None, Header()] = None,
    x_ab_test: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Transcribe through the cascade; the body has ``model_selection`` and the result.

    With an A/B test (``ab_test`` / ``X-AB-Test``, or the only running test when a session id
    is given and no preset or ladder) the session's arm picks the target; the body's ``ab``
    block names the test and the arm.
    """
    session = session_id or x_session_id
    test_id = ab_test or x_ab_test
    if test_id is not None and (preset is not None or ladder is not None):
        raise ServiceError(
            400,
            "InvalidArgumentError",
            "an A/B test chooses the preset and ladder: drop preset/ladder or ab_test",
        )
    target = service.target(preset=preset, ladder=ladder)
    data, name = await read_upload(file, service.settings.max_upload_bytes)
    implicit = preset is None and ladder is None

    def work() -> tuple[CascadeResult, dict[str, Any] | None]:
        enrolled = enrollment(service, test_id=test_id, session_id=session, implicit=implicit)
        if enrolled is None:
            return service.transcribe(data, name, target), None
        routed = transcribe_routed(service, data, name, enrolled)
        return routed.result, routed.ab()

    result, ab = await service.run(work)
    body = success_body(result, {"session_id": session})
    if ab is not None:
        body["ab"] = ab
    return body


@router.post("/intelligent-select")
async def intelligent_select(
    file: Annotated[UploadFile, File()],
    service: Annotated[Service, Depends(get_service)],
    preset: Annotated[str | None, Form()] = None,
    ladder: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    """Audio features and the recommended starting model, without transcribing."""
    target = service.target(preset=preset, ladder=ladder)
    data, name = await read_upload(file, service.settings.max_upload_bytes)
    rec = await service.run(lambda: service.recommend(data, name, target))
    return {"success": True, **jsonable(rec)}


@router.get("/models")
def models(service: Annotated[Service, Depends(get_service)]) -> dict[str, Any]:
    """Registered models (no file paths), ladders and presets, with the defaults."""
    md = service.settings.models_dir
    listed = [
        {
            "name": spec.name,
            "family": spec.family,
            "relative_cost": spec.relative_cost,
            "window_s": spec.window_s,
            "present": resolve_present(spec, md),
        }
        for spec in service.known_models().values()
    ]
    return {
        "success": True,
        "default_preset": service.cascade.preset.name,
        "default_ladder": service.cascade.ladder.name,
        "models": listed,
        "ladders": {n: list(lad.names) for n, lad in service.known_ladders().items()},
        "presets": sorted(service.known_presets()),
    }
