"""Base classes for API shapes: strict inputs (no unknown fields, no NUL bytes, no NaN/Infinity, dates and
times written as ISO text)."""

from __future__ import annotations

import types
from collections.abc import Callable
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Union, get_args, get_origin

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    FutureDate,
    FutureDatetime,
    NaiveDatetime,
    PastDate,
    PastDatetime,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from app.core.inputs import iso_date_input, iso_datetime_input


def reject_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise PydanticCustomError("rule.nul_byte", "NUL bytes are not allowed in text")
    if isinstance(value, list):
        for item in value:
            reject_nul(item)
    return value


DATETIME_TYPES = frozenset({datetime, AwareDatetime, NaiveDatetime, PastDatetime, FutureDatetime})
DATE_TYPES = frozenset({date, PastDate, FutureDate})


def strict_bool(value: Any) -> Any:
    if not isinstance(value, bool):
        raise PydanticCustomError("bool_type", "Input should be true or false")
    return value


def strict_number(value: Any) -> Any:
    # As the schema says: a JSON number, never a string or a boolean ("5", true), which pydantic alone would take.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("number_type", "Input should be a number")
    return value


@lru_cache(maxsize=1024)
def _temporal_check(model: type[BaseModel], name: str) -> Callable[[Any], Any] | None:
    """The check a field's type needs beyond pydantic's lax mode (optional or not): ISO text for a date or a
    datetime, a JSON boolean for a bool, a JSON number for an int or a float; else None."""
    field = model.model_fields.get(name)
    annotation: Any = field.annotation if field is not None else None
    if get_origin(annotation) in (Union, types.UnionType):
        kinds = [a for a in get_args(annotation) if a is not type(None)]
        annotation = kinds[0] if len(kinds) == 1 else None
    if annotation in DATETIME_TYPES:
        return iso_datetime_input
    if annotation in DATE_TYPES:
        return iso_date_input
    if annotation is bool:
        return strict_bool
    if annotation in (int, float):
        return strict_number
    return None


class InputModel(BaseModel):
    """Every request body derives from this: unknown fields are a 422, never silently dropped; a date or a
    time must be ISO text (pydantic alone takes the number 0 as 1970-01-01); a bool is true or false and a
    number a JSON number, as the published schema says (pydantic alone takes 0, "yes" and "5")."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any, info: ValidationInfo) -> Any:
        value = reject_nul(value)
        check = _temporal_check(cls, info.field_name) if value is not None and info.field_name else None
        return check(value) if check is not None else value


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def schema_rules(*, not_null: tuple[str, ...] = (), dependent: dict[str, list[str]] | None = None,
                 min_properties: int | None = None) -> Callable[[dict[str, Any]], None]:
    """A model's `json_schema_extra` that publishes the rules its validators enforce, so that what the schema
    allows is accepted: fields that may be left out but never sent as null (`not_null`), fields that come in
    pairs (`dependent`, JSON Schema's dependentRequired), a body that must change something (`min_properties`)."""

    def apply(schema: dict[str, Any]) -> None:
        properties = schema.get("properties", {})
        for name in not_null:
            field = properties.get(name, {})
            kinds = [k for k in field.pop("anyOf", []) if k.get("type") != "null"]
            if len(kinds) == 1:
                field.update(kinds[0])
            elif kinds:
                field["anyOf"] = kinds
            if field.get("default", 0) is None:
                field.pop("default")
        if dependent:
            schema["dependentRequired"] = dependent
        if min_properties is not None:
            schema["minProperties"] = min_properties

    return apply
