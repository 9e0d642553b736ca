"""What the monthly report refuses (docs/reports.md)."""

from __future__ import annotations

from app.core.errors import Unprocessable


class ReportMonthFormat(Unprocessable):
    code = "report_month_format"
    en = "The month must be written YYYY-MM (a month from 1900-01 on)."
    zh = "月份格式应为 YYYY-MM（1900-01 起）。"


class ReportMonthFuture(Unprocessable):
    code = "report_month_future"
    en = "A report covers the current month or an earlier one, never a month still to come."
    zh = "报告只能针对本月或以前的月份，不能是将来的月份。"


class RollupLevel(Unprocessable):
    code = "rollup_level"
    en = "Roll-ups are for a street, district or city; a community's figures are its monthly report."
    zh = "汇总仅适用于街道、区或市；社区的数字请查看该社区的月报告。"
