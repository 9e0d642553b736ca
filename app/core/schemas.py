"""Base classes for API shapes: strict inputs (no unknown fields, no NUL bytes, no NaN/Infinity)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError


def reject_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise PydanticCustomError("rule.nul_byte", "NUL bytes are not allowed in text")
    if isinstance(value, list):
        for item in value:
            reject_nul(item)
    return value


class InputModel(BaseModel):
    """Every request body derives from this: unknown fields are a 422, never silently dropped."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return reject_nul(value)


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
