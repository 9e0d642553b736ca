"""What the supervisor and auditor views can refuse."""

from __future__ import annotations

from app.core.errors import Unprocessable


class PeriodInvalid(Unprocessable):
    code = "period_invalid"
    en = "'from' must not be later than 'to'."
    zh = "起始日期不能晚于截止日期。"


class PeriodTooLong(Unprocessable):
    code = "period_too_long"
    en = "A period is at most 92 days; ask for fewer days."
    zh = "查询期间最长92天，请缩短期间。"


class MonthInvalid(Unprocessable):
    code = "month_invalid"
    en = "Give the month as YYYY-MM."
    zh = "月份格式应为 YYYY-MM。"
