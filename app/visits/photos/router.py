"""Visit photos: upload (type, size and pixel limits; a clean re-encoded copy is stored), list, download (only for
those who may see the visit)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Response, UploadFile

from app.auth.deps import StaffActor
from app.core.deps import SessionDep, SettingsDep
from app.core.schemas import OutputModel
from app.visits.models import CLIENT_ID_MAX, PhotoKind
from app.visits.photos import service as photos

router = APIRouter(tags=["visits"])

VisitId = Annotated[str, Path(max_length=CLIENT_ID_MAX)]
PhotoId = Annotated[str, Path(max_length=CLIENT_ID_MAX)]
NO_STORE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


class PhotoOut(OutputModel):
    id: str
    visit_id: str
    kind: str
    content_type: str
    size_bytes: int
    sha256: str
    width: int | None
    height: int | None
    uploaded_by: str
    created_at: datetime


UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The same content was already stored for this visit (a retry): the stored photo"},
    403: {"description": "not_visit_author"},
    409: {"description": "photo_window_closed or photo_limit"},
    413: {"description": "photo_too_large (or body_too_large for the whole request)"},
    415: {"description": "photo_type: not JPEG, PNG or WebP by content"},
    422: {"description": "photo_empty; photo_too_many_pixels (width × height over PHOTO_MAX_PIXELS); photo_invalid "
                         "(does not decode completely); or a missing file or kind"},
}


@router.post("/visits/{visit_id}/photos", response_model=PhotoOut, status_code=201, responses=UPLOAD_RESPONSES,
             summary="Add a photo to your visit (JPEG/PNG/WebP, within PHOTO_UPLOAD_HOURS of receipt)")
def upload_photo(
    visit_id: VisitId,
    session: SessionDep,
    settings: SettingsDep,
    actor: StaffActor,
    response: Response,
    file: Annotated[UploadFile, File(description="The image; its type is decided by its content")],
    kind: Annotated[PhotoKind, Form(description="What the photo shows")],
) -> PhotoOut:
    data = file.file.read(settings.photo_max_bytes + 1)
    photo, created = photos.upload(session, actor, settings, visit_id, kind.value, data)
    if not created:
        response.status_code = 200
    return PhotoOut.model_validate(photo)


@router.get("/visits/{visit_id}/photos", response_model=list[PhotoOut], summary="A visit's photos (metadata)")
def list_photos(visit_id: VisitId, session: SessionDep, actor: StaffActor) -> list[PhotoOut]:
    return [PhotoOut.model_validate(p) for p in photos.list_photos(session, actor, visit_id)]


@router.get("/visits/{visit_id}/photos/{photo_id}", summary="A photo's bytes (audited, never cached)",
            response_class=Response,
            responses={200: {"content": {photos.JPEG: {}, photos.PNG: {}, photos.WEBP: {}},
                             "description": "The image"}})
def download_photo(visit_id: VisitId, photo_id: PhotoId, session: SessionDep, settings: SettingsDep,
                   actor: StaffActor) -> Response:
    _, photo = photos.get_photo(session, actor, visit_id, photo_id)
    data = photos.read_bytes(settings.photo_dir, photo)
    photos.audit_download(session, photo)
    return Response(content=data, media_type=photo.content_type, headers=NO_STORE)
