"""What recording, correcting and reviewing a visit can refuse (one place: REST, corrections and sync push)."""

from __future__ import annotations

from app.core.errors import Conflict, Forbidden, Unprocessable
from app.visits.models import FOLLOW_UP_MAX_DAYS


class VisitTooOld(Unprocessable):
    code = "visit_too_old"
    en = "The visit started too long ago to be recorded (see VISIT_MAX_AGE_DAYS)."
    zh = "访视开始时间过早，已超过可补录期限。"


class VisitResidentNotActive(Unprocessable):
    code = "resident_not_active"
    en = "The record is archived; record the visit on the surviving record."
    zh = "该人员档案已归档，请在现行档案上记录访视。"


class FollowUpDateRange(Unprocessable):
    code = "follow_up_date_range"
    en = f"A follow-up is due on or after the visit's date and within {FOLLOW_UP_MAX_DAYS} days of it."
    zh = f"随访日期应不早于访视当日，且在访视后{FOLLOW_UP_MAX_DAYS}天以内。"


class VisitIdTaken(Conflict):
    code = "visit_id_taken"
    en = "This visit id is already used by a different visit; generate a new id."
    zh = "该访视编号已被其他访视使用，请生成新编号。"


class DeliveryIdTaken(Conflict):
    code = "delivery_id_taken"
    en = "A service delivery id is already used; generate a new id."
    zh = "服务记录编号已被使用，请生成新编号。"


class OwnVisitReview(Forbidden):
    code = "own_visit_review"
    en = "You cannot review a visit you recorded yourself."
    zh = "不能审核自己记录的访视。"


class NotVisitAuthor(Forbidden):
    code = "not_visit_author"
    en = "Only the visit's author or a supervisor can correct it."
    zh = "只有访视记录人或督导可以更正该访视。"


class AlreadyCorrected(Conflict):
    code = "already_corrected"
    en = "This visit has already been corrected; correct the newest version instead."
    zh = "该访视已被更正，请更正最新的版本。"
