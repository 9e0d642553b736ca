"""Visit photos: upload (type and size limits), list, download (only for those who may see the visit)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["visits"])
