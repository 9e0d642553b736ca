"""Errors of the landlord partner routes and of the staff routes that confirm what landlords send."""

from __future__ import annotations

from app.core.errors import Conflict, Forbidden, TooManyRequests, Unprocessable


class LandlordNotConfirmed(Forbidden):
    code = "landlord_not_confirmed"
    en = "Your landlord account is waiting for a community worker to confirm it; until then you see nothing."
    zh = "您的房东账号正在等待社区专干确认，确认前无法查看或报告任何信息。"


class RegistrationThrottled(TooManyRequests):
    code = "registration_throttled"
    en = "Too many registrations from this address; try again later."
    zh = "该地址注册次数过多，请稍后再试。"


class PhoneRequired(Unprocessable):
    code = "landlord_phone_required"
    en = "A landlord signs in with their mobile number: give one (or record it on the landlord first)."
    zh = "房东以手机号登录，请填写手机号（或先在房东信息中登记）。"


class LandlordAccountExists(Conflict):
    code = "landlord_account_exists"
    en = "This landlord already has an account."
    zh = "该房东已有账号。"


class AccountAreaRequired(Unprocessable):
    code = "landlord_area_required"
    en = "The landlord has no dwelling in your area and your account is not tied to one: attach a dwelling first."
    zh = "该房东在您的辖区内没有房屋，且您的账号不属于某一区域，请先关联房屋。"


class AlreadyConfirmed(Conflict):
    code = "already_decided"
    en = "This has already been decided."
    zh = "该事项已处理。"


class IdentityMismatch(Conflict):
    code = "landlord_identity_mismatch"
    en = "The landlord on record with this ID number has another name; check the account's details."
    zh = "该身份号码对应的房东登记姓名不同，请核对账号信息。"


class NotACommunity(Unprocessable):
    code = "community_unknown"
    en = "No active community has this id."
    zh = "没有该社区或社区已停用。"


class DwellingHasOtherLandlord(Conflict):
    code = "dwelling_has_landlord"
    en = "The dwelling already has another landlord; reject the claim or change the landlord first."
    zh = "该房屋已有其他房东，请驳回申请或先更换房东。"


class DwellingNotInCommunity(Unprocessable):
    code = "dwelling_not_in_community"
    en = "The dwelling named is not in the community of the claim."
    zh = "所选房屋不在申请所属社区。"


class TenancyClosed(Conflict):
    code = "tenancy_closed"
    en = "This tenancy has already ended on another date."
    zh = "该租住记录已在其他日期结束。"


class DateBeforeMoveIn(Unprocessable):
    code = "date_before_move_in"
    en = "The move-out date is before the tenant moved in."
    zh = "搬离日期早于入住日期。"


class ReportNotPending(Conflict):
    code = "report_not_pending"
    en = "This report is not waiting for a worker any more."
    zh = "该报告已处理。"
