"""What a push refuses: the whole request (422/413), or one record (listed in `rejected`)."""

from __future__ import annotations

from app.core.errors import AppError, Conflict, Forbidden, Unprocessable


class PushInvalid(Unprocessable):
    code = "push_invalid"
    en = "The body must be WatermelonDB's changes object: {table: {created: [], updated: [], deleted: []}}."
    zh = "请求体必须是 WatermelonDB 的 changes 对象：{表: {created: [], updated: [], deleted: []}}。"


class PushTooLarge(AppError):
    status = 413
    code = "push_too_large"
    en = ("The push holds more records than the server takes at once: send them in several pushes, in table order, "
          "none over the limits in details.")
    zh = "一次推送的记录超过服务器上限：请按数据表顺序分多次推送，每次不超过 details 中的限额。"


class SyncTableUnknown(Unprocessable):
    code = "sync_table_unknown"
    en = "The push names a table the server does not sync: this app version is not compatible."
    zh = "推送包含服务器不同步的数据表，此应用版本不兼容。"


# --- per-record refusals (reported in `rejected`, never raised out of the push) -----------------------------


class RecordInvalid(Unprocessable):
    code = "record_invalid"
    en = "The record is malformed: a missing or wrongly typed field, or an invalid id."
    zh = "记录格式错误：字段缺失、类型错误或编号无效。"


class IdNotAccepted(Unprocessable):
    code = "id_not_accepted"
    en = ("Residents and dwellings take WatermelonDB's ids (16 to 32 letters and digits), not UUIDs: the record was "
          "not stored, and the next sync removes it from the phone.")
    zh = ("人员和房屋记录须使用 WatermelonDB 编号（16至32位字母或数字），不接受 UUID："
          "该记录未保存，下次同步将从手机删除。")


class ReadOnlyTable(Forbidden):
    code = "read_only_table"
    en = "Phones may not change this table."
    zh = "手机端不能修改此数据表。"


class DeleteNotAllowed(Forbidden):
    code = "delete_not_allowed"
    en = "This record cannot be deleted from a phone."
    zh = "不能在手机端删除此记录。"


class FieldNotWritable(Forbidden):
    code = "field_not_writable"
    en = "The record changes a field your role may not change; nothing of it was applied."
    zh = "记录修改了您的角色无权修改的字段，整条记录未被采纳。"


class TaskKindNotAllowed(Forbidden):
    code = "task_kind_not_allowed"
    en = "Phones may only create follow-up tasks."
    zh = "手机端只能创建跟进任务。"


class ResidentRecordReplaced(Conflict):
    code = "resident_record_replaced"
    en = "This person already had a record in your area; it was registered again and replaces yours."
    zh = "此人在您的辖区已有档案，已重新登记该档案，取代您新建的记录。"
    keep_changes = True


class ConcurrentChange(Conflict):
    code = "concurrent_conflict"
    en = "Another change to the same record happened at the same time; sync again."
    zh = "同一记录同时被修改，请重新同步。"
