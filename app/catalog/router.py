"""The free-service catalogue: read by every staff role, changed by admins (each change is a version)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/catalog", tags=["catalog"])
