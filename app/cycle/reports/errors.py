"""What the monthly report refuses (docs/reports.md)."""

from __future__ import annotations

from app.core.errors import Conflict, Unprocessable


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


class ReportMonthRunning(Conflict):
    code = "report_month_running"
    en = "The month is not over yet: its report is submitted once the month has ended."
    zh = "本月尚未结束，月报告须在月末之后上报。"


class ReportAlreadySubmitted(Conflict):
    code = "report_already_submitted"
    en = "The report is already submitted and waits for the supervisor's decision."
    zh = "该月报告已上报，正在等待审核。"


class ReportNotSubmitted(Conflict):
    code = "report_not_submitted"
    en = "The report is not waiting for a decision (not submitted, or returned to the worker)."
    zh = "该月报告未处于待审核状态（未上报或已退回）。"


class ReportLocked(Conflict):
    code = "report_locked"
    en = "The report is approved and locked; later changes are corrections."
    zh = "该月报告已审核通过并锁定，之后的修改须以更正记录提交。"


class ReportNotLocked(Conflict):
    code = "report_not_locked"
    en = "Only an approved (locked) report takes corrections; before that, return and resubmit it."
    zh = "只有已审核锁定的月报告才能提交更正；锁定之前请退回后重新上报。"


class CorrectionFigure(Unprocessable):
    code = "correction_figure"
    en = "The code names no count of this report (shares are computed, never corrected)."
    zh = "该代码不是本报告中的计数指标（比率由计数得出，不能直接更正）。"


class CorrectionUnchanged(Unprocessable):
    code = "correction_unchanged"
    en = "The corrected value is the figure's current value."
    zh = "更正值与该指标当前数值相同。"
