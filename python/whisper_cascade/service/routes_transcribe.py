"""``POST /transcribe``, ``POST /intelligent-select`` and ``GET /models``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile

from .engine import Service, resolve_present, success_body
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
) -> dict[str, Any]:
    """Transcribe through the cascade; the body has ``model_selection`` and the result."""
    target = service.target(preset=preset, ladder=ladder)
    data, name = await read_upload(file, service.settings.max_upload_bytes)
    result = await service.run(lambda: service.transcribe(data, name, target))
    return success_body(result, {"session_id": session_id})


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
