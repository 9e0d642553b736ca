"""What the resident workflows refuse (transfers, duplicate review and merges, corrections)."""

from __future__ import annotations

from app.core.errors import Conflict, Forbidden


class TransferNotPending(Conflict):
    code = "transfer_not_pending"
    en = "This transfer request has already been decided or cancelled."
    zh = "该转移申请已处理或已撤销。"


class TransferHolderOnly(Forbidden):
    code = "transfer_holder_only"
    en = "Only the community that holds the record can accept or reject this transfer."
    zh = "只有原登记社区可以同意或拒绝该转移申请。"


class TransferRequesterOnly(Forbidden):
    code = "transfer_requester_only"
    en = "Only the requesting community can cancel this transfer."
    zh = "只有申请社区可以撤销该转移申请。"


class TransferStale(Conflict):
    code = "transfer_stale"
    en = (
        "The record is no longer in your area, or can no longer be handed over (it moved, was merged or was "
        "anonymised since the request); reject the request."
    )
    zh = "该档案已不在您的辖区或已无法转移（申请后已迁移、合并或匿名化），请拒绝该申请。"


class TransferDwellingUnavailable(Conflict):
    code = "transfer_dwelling_unavailable"
    en = "The dwelling named in the request is no longer in use; the requester should register again."
    zh = "申请中的房屋已停用，请申请方重新登记。"


class DuplicateNotOpen(Conflict):
    code = "duplicate_not_open"
    en = "This duplicate flag has already been merged or dismissed."
    zh = "该疑似重复记录已处理。"


class MergeSameRecord(Conflict):
    code = "merge_same_record"
    en = "A record cannot be merged into itself."
    zh = "不能将记录与其自身合并。"


class ResidentAlreadyMerged(Conflict):
    code = "resident_already_merged"
    en = "One of the records has already been merged into another."
    zh = "其中一条记录已被合并。"


class ResidentAnonymised(Conflict):
    code = "resident_anonymised"
    en = "An anonymised record cannot be merged or corrected."
    zh = "已匿名化的记录不能合并或更正。"


class MergeKeepNotRegistered(Conflict):
    code = "merge_keep_not_registered"
    en = "Keep the registered record: merge the left or archived one into it, not the other way round."
    zh = "请保留在册记录，将已离开或已归档的记录并入其中。"


class CorrectionNotPending(Conflict):
    code = "correction_not_pending"
    en = "This correction request has already been decided."
    zh = "该更正申请已处理。"


class CorrectionRecordArchived(Conflict):
    code = "resident_archived"
    en = "The record is archived (merged or anonymised); correct the surviving record instead."
    zh = "该记录已归档（已合并或已匿名化），请更正保留的记录。"


class CorrectionNoLongerValid(Conflict):
    code = "correction_invalid"
    en = "The requested values no longer pass the current rules; reject the request and ask again."
    zh = "申请的值已不符合当前规则，请拒绝后重新申请。"
