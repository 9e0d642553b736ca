"""What registering and changing a resident refuses (the rules of ID numbers, phones and dates too)."""

from __future__ import annotations

from app.core.errors import Conflict, Unprocessable


class IdFormat(Unprocessable):
    code = "id_format"
    en = "An ID number has 18 characters: 17 digits and a digit or X (15-digit legacy numbers are converted)."
    zh = "公民身份号码应为18位：17位数字加1位数字或X（15位旧号码会自动升位）。"


class IdBirthDate(Unprocessable):
    code = "id_birth_date"
    en = "The birth date inside the ID number is not a real date or is out of range."
    zh = "身份号码中的出生日期无效。"


class IdCheckDigit(Unprocessable):
    code = "id_check_digit"
    en = "The ID number's check character is wrong. A supervisor can register it as 'ID unverified'."
    zh = "身份号码校验位错误。督导可将其登记为“身份未核验”。"


class IdProvinceUnknown(Unprocessable):
    code = "id_province_unknown"
    en = ("The ID number's first two digits name no province (GB/T 2260). A supervisor can register it as "
          "'ID unverified'.")
    zh = "身份号码前两位不是有效的省级行政区划代码（GB/T 2260）。督导可将其登记为“身份未核验”。"


class IdSexMismatch(Unprocessable):
    code = "id_sex_mismatch"
    en = "The sex does not agree with the ID number (odd 17th digit = male, even = female)."
    zh = "性别与身份号码不符（第17位奇数为男，偶数为女）。"


class IdBirthDateMismatch(Unprocessable):
    code = "id_birth_date_mismatch"
    en = "The birth date does not agree with the ID number."
    zh = "出生日期与身份号码不符。"


class PhoneFormat(Unprocessable):
    code = "phone_format"
    en = "A mobile number has 11 digits starting with 13–19 (+86 and separators are allowed)."
    zh = "手机号码应为以13–19开头的11位数字。"


class DateOutOfRange(Unprocessable):
    code = "date_out_of_range"
    en = "A date is in the future or implausibly far in the past."
    zh = "日期不能晚于今天，也不能早于合理范围。"


class ResidentExists(Conflict):
    code = "resident_exists"
    en = "This person is already registered in your area."
    zh = "此人已在您的辖区登记。"


class RegisteredElsewhere(Conflict):
    code = "resident_registered_elsewhere"
    en = ("This person already has a record in another community of the city. A transfer request has been sent "
          "to that community instead of creating a second record; the record comes to you once they accept.")
    zh = "此人在本市其他社区已有档案，已向该社区发送转移申请，不会重复建档；对方同意后档案转入您的辖区。"
    keep_changes = True  # the transfer request it created must survive the 409


class ResidentIdentityMismatch(Conflict):
    code = "resident_identity_mismatch"
    en = ("The details sent do not match the record held for this ID number (details.fields names them). Check "
          "the ID card; if the record itself is wrong, the community that holds it can correct it.")
    zh = "所填信息与该身份号码的已有档案不符（details.fields 列出字段）。请核对身份证；如档案有误，请由登记社区更正。"
    audit_outcome = "denied"  # each refusal is in the audit log: a series of them is someone guessing names


class ResidentNotActive(Conflict):
    code = "resident_not_active"
    en = "Only a registered (not left or archived) resident can be changed this way."
    zh = "只有在册人员才能执行此操作。"


RULE_ERRORS: dict[str, type[Unprocessable]] = {
    "id_format": IdFormat,
    "id_birth_date": IdBirthDate,
    "phone_format": PhoneFormat,
}
