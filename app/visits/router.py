"""Visits: record (with check-in), read, review, correct; a resident's visits and service history."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["visits"])
