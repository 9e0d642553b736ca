"""What the assistance requests refuse."""

from __future__ import annotations

from app.core.errors import Conflict, Forbidden, Unprocessable


class InvalidTransition(Conflict):
    code = "invalid_transition"
    en = "The request cannot move to that state from its current state."
    zh = "协查请求当前状态不允许此操作。"


class NoPartnerAgreement(Conflict):
    code = "no_partner_agreement"
    en = "The resident's household-registration city has no cooperation agreement for assistance requests."
    zh = "该居民户籍地城市未签订区域协作协议，无法发送协查。"


class PartnerCityUnknown(Unprocessable):
    code = "partner_city_unknown"
    en = "The city is not one of the partner cities with a cooperation agreement."
    zh = "该城市不是区域协作伙伴城市。"


class ResidentNotRegistered(Conflict):
    code = "resident_not_registered"
    en = "The resident is not registered here (left or archived)."
    zh = "该居民当前不在册（已离开或已归档）。"


class RequestOpen(Conflict):
    code = "assistance_request_open"
    en = "An assistance request on this topic is already open for this resident."
    zh = "该居民此类协查请求尚未办结。"


class DuplicateReference(Conflict):
    code = "duplicate_partner_reference"
    en = "The partner city's request with this reference is registered already."
    zh = "该伙伴城市此编号的协查请求已登记。"


class PartnerSideOnly(Forbidden):
    code = "partner_side_only"
    en = "Only an admin records the partner city's steps on an outgoing request."
    zh = "外发协查的对方办理进展只能由管理员代为登记。"


class OfficeSideOnly(Forbidden):
    code = "office_side_only"
    en = "The office answers the requests a partner city sends; the partner city cannot move them."
    zh = "伙伴城市发来的协查由本方办理，对方不能变更其办理状态。"


class AnswerFields(Unprocessable):
    code = "answer_fields"
    en = "The 婚育证明 status belongs to a 婚育证明 request, and only there is it required."
    zh = "婚育证明状态仅适用且必须填写于婚育证明核实请求。"


class AnswerDate(Unprocessable):
    code = "answer_date"
    en = "The answer date is before the request was sent or after today."
    zh = "反馈日期早于发送日期或晚于今天。"
