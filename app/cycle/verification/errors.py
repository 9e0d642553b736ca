"""What periods and verifications refuse (docs/cycle.md)."""

from __future__ import annotations

from app.core.errors import Conflict, NotFound, Unprocessable


class PeriodMonthOutOfRange(Unprocessable):
    code = "period_month_out_of_range"
    en = "Only the previous, the current and the next month can be opened."
    zh = "只能开启上月、本月或下月的核查周期。"


class PeriodClosed(Conflict):
    code = "period_closed"
    en = "The period is closed: its verifications can no longer be recorded."
    zh = "该核查周期已关闭，不能再登记核查结果。"


class VerificationRecorded(Conflict):
    code = "verification_recorded"
    en = "This verification already has another outcome; it is recorded once."
    zh = "该核查已登记其他结果，每条核查只登记一次。"


class ResidentNotRegistered(Conflict):
    code = "resident_not_registered"
    en = "The resident is not registered here any more (left or archived)."
    zh = "该居民当前不在册（已离开或已归档）。"


class EvidenceMissing(Unprocessable):
    code = "evidence_missing"
    en = ("The outcome needs evidence: a visit (visit_id), a phone call, or partner data confirming a partner's "
          "pending proposal of this outcome.")
    zh = "核查结果需要依据：走访（visit_id）、电话，或确认协作单位对该结果的待确认提议。"


class DwellingRequired(Unprocessable):
    code = "dwelling_required"
    en = "MOVED_WITHIN_CITY needs the new dwelling (new_dwelling_id), and only that outcome takes one."
    zh = "本市内迁移须填写新住所（new_dwelling_id），其他结果不填。"


class SameDwelling(Unprocessable):
    code = "same_dwelling"
    en = "The new dwelling is the one the resident lives in already."
    zh = "新住所与当前住所相同。"


class VisitOfOtherResident(Unprocessable):
    code = "visit_other_resident"
    en = "The visit given as evidence is not a visit of this resident."
    zh = "作为依据的走访记录不属于该居民。"


class VerificationNotFound(NotFound):
    pass
