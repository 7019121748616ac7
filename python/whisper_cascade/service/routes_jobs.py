"""Asynchronous jobs: ``POST /jobs`` queues a transcription, ``GET /jobs/{id}`` reports it."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile

from .engine import Service
from .errors import ServiceError
from .guards import get_service, read_upload

router = APIRouter(tags=["jobs"])


@router.post("/jobs", status_code=202)
async def create_job(
    file: Annotated[UploadFile, File()],
    service: Annotated[Service, Depends(get_service)],
    preset: Annotated[str | None, Form()] = None,
    ladder: Annotated[str | None, Form()] = None,
    session_id: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    """Queue a transcription (429 when the queue is full); answer its id."""
    target = service.target(preset=preset, ladder=ladder)
    data, name = await read_upload(file, service.settings.max_upload_bytes)
    request = {"preset": preset, "ladder": ladder, "session_id": session_id, "file": name}
    job_id = await asyncio.to_thread(service.create_job, data, name, target, request)
    return {"success": True, "id": job_id, "status": "queued"}


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, service: Annotated[Service, Depends(get_service)]) -> dict[str, Any]:
    """The job's status (queued, running, done, failed) and its result or error."""
    record = await asyncio.to_thread(service.get_job, job_id)
    if record is None:
        raise ServiceError(404, "NotFound", f"no job {job_id!r}")
    return {
        "success": True,
        "id": record.job_id,
        "status": record.status,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "request": json.loads(record.request_json),
        "result": None if record.result_json is None else json.loads(record.result_json),
        "error": None if record.error_json is None else json.loads(record.error_json),
    }
