"""The report of a register import (dry run or commit)."""

from __future__ import annotations

from pydantic import Field

from app.core.schemas import OutputModel

MAX_LISTED_ERRORS = 50_000


class ResidentImportRowError(OutputModel):
    row: int = Field(description="Row number as the spreadsheet shows it (the header is row 1)")
    column: str | None = Field(description="The template's column header")
    field: str | None = Field(description="The API field name")
    code: str
    message: str


class ResidentImportReport(OutputModel):
    dry_run: bool
    format: str = Field(description="xlsx or csv")
    encoding: str | None = Field(description="CSV only: utf-8 or gb18030")
    rows: int = Field(description="Data rows read (blank rows skipped)")
    valid_rows: int
    error_rows: int
    error_count: int = Field(description=f"All errors found (the list is capped at {MAX_LISTED_ERRORS:,})")
    to_create: int = Field(description="New people (dry run: would be created)")
    to_reregister: int = Field(description="People who had left and are registered again")
    created: int
    reregistered: int
    ignored_columns: list[str]
    errors: list[ResidentImportRowError]
