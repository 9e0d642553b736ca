"""Uploading visit photos and finding what was stored, for the photo tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from app.core.config import Settings
from tests.conftest import Api
from tests.db import rows
from tests.visits import VISITS


def photos_url(visit_id: str) -> str:
    return f"{VISITS}/{visit_id}/photos"


def upload(api: Api, visit_id: str, data: bytes, *, user: str = "worker1", name: str = "photo.jpg",
           content_type: str = "image/jpeg", kind: str = "dwelling") -> Any:
    return api.as_(user, "POST", photos_url(visit_id), data={"kind": kind},
                   files={"file": (name, data, content_type)})


def uploaded(api: Api, visit_id: str, data: bytes, **kwargs: Any) -> dict[str, Any]:
    response = upload(api, visit_id, data, **kwargs)
    assert response.status_code == 201, response.text
    return dict(response.json())


def on_disk(settings: Settings, digest: str) -> Path:
    return Path(settings.photo_dir) / digest[:2] / digest[2:4] / digest


def stored_files(settings: Settings) -> set[str]:
    return {p.name for p in Path(settings.photo_dir).rglob("*") if p.is_file()}


def photo_rows(engine: Engine, visit_id: str) -> list[dict[str, Any]]:
    return rows(engine, "SELECT * FROM visit_photos WHERE visit_id = :v ORDER BY created_at", v=visit_id)
