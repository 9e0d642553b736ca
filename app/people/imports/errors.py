"""What a register import refuses as a whole (row errors are reported, not raised: rules.py)."""

from __future__ import annotations

from app.core.errors import Conflict, Unprocessable


class ImportColumns(Unprocessable):
    code = "import_columns"
    en = "The header row lacks required columns or repeats one; use the template's headers."
    zh = "表头缺少必填列或有重复列，请使用模板的表头。"


class ImportInvalid(Unprocessable):
    code = "import_invalid"
    en = "Some rows are not valid; nothing was imported. details.errors lists every row's errors."
    zh = "部分行无效，未导入任何数据。details.errors 列出了每一行的错误。"
    audit_outcome = "invalid"


class ImportConflict(Conflict):
    code = "import_conflict"
    en = "Someone registered one of these people while the import ran; nothing was imported. Try again."
    zh = "导入期间有人登记了其中的人员，未导入任何数据，请重试。"
