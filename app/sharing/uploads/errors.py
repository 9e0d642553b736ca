"""What the police upload and its review queue refuse as a whole (row errors are reported: rules.py)."""

from __future__ import annotations

from app.core.errors import Conflict, Unprocessable


class BatchReferenceReused(Conflict):
    code = "batch_reference_reused"
    en = "This batch reference was already used for a different file; give each upload its own reference."
    zh = "该批次编号已用于另一份文件，请为每次上传使用不同的批次编号。"


class RowNotPending(Conflict):
    code = "police_row_not_pending"
    en = "Only a pending row (new or conflicting) can be resolved."
    zh = "只能处理待处理（新增或不一致）的记录。"


class ResidentMismatch(Unprocessable):
    code = "police_row_resident_mismatch"
    en = "The resident chosen is not registered with this row's ID number."
    zh = "所选人员的身份号码与该记录不一致或未在册。"


class DwellingRequired(Unprocessable):
    code = "police_row_dwelling_required"
    en = "The address sent matches no single dwelling: choose the dwelling (dwelling_id)."
    zh = "上报地址未能对应到唯一住所，请选择住所（dwelling_id）。"


class HukouRequired(Unprocessable):
    code = "police_row_hukou_required"
    en = "The row has no valid 户籍地 code: give hukou_code to register the person."
    zh = "该记录没有有效的户籍地代码，登记时请填写 hukou_code。"
