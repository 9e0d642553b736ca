"""The task list: the worker's day (/me/tasks), task lists for supervisors, follow-ups, cancellation."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["tasks"])
