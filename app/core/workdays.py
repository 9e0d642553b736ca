"""China's official working-day calendar: public holidays and the adjusted working weekends (调休上班).

Each year the State Council's General Office publishes the year's holidays (放假调休) and the weekend days worked
instead (上班). The years below are encoded from those notices, as Xinhua published them:
- 2025: 国务院办公厅关于2025年部分节假日安排的通知 (国办发明电〔2024〕12号, 2024-11-12);
- 2026: 国务院办公厅关于2026年部分节假日安排的通知 (2025-11-04).

A day of a known year is a working day when the notice makes it one (a make-up Saturday or Sunday), is not one
when it falls in a holiday period, and otherwise is one from Monday to Friday. A year the calendar does not
know falls back to Monday to Friday (no holidays): `WORKDAY_CALENDAR_FILE` names a JSON file that adds years
(or replaces a built-in one), in this form (docs/sharing.md, "Working days"):

    {"2027": {"holidays": ["2027-01-01", "2027-02-06/2027-02-14"], "workdays": ["2027-02-20"],
              "source": "国务院办公厅关于2027年部分节假日安排的通知"}}

`holidays` lists days off, each a date or an inclusive `start/end` range; `workdays` lists the weekend days
worked; `source` is optional free text. Every date must lie in its year, and no day may be both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.core.config import get_settings

MAX_FILE_BYTES = 1_048_576

# year -> (holiday periods as inclusive (first, last) ISO dates, make-up working days)
BUILT_IN: Mapping[int, tuple[tuple[tuple[str, str], ...], tuple[str, ...]]] = {
    2025: (
        (("2025-01-01", "2025-01-01"),  # 元旦
         ("2025-01-28", "2025-02-04"),  # 春节
         ("2025-04-04", "2025-04-06"),  # 清明节
         ("2025-05-01", "2025-05-05"),  # 劳动节
         ("2025-05-31", "2025-06-02"),  # 端午节
         ("2025-10-01", "2025-10-08")),  # 国庆节、中秋节
        ("2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11"),
    ),
    2026: (
        (("2026-01-01", "2026-01-03"),  # 元旦
         ("2026-02-15", "2026-02-23"),  # 春节
         ("2026-04-04", "2026-04-06"),  # 清明节
         ("2026-05-01", "2026-05-05"),  # 劳动节
         ("2026-06-19", "2026-06-21"),  # 端午节
         ("2026-09-25", "2026-09-27"),  # 中秋节
         ("2026-10-01", "2026-10-07")),  # 国庆节
        ("2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"),
    ),
}


class CalendarFileError(ValueError):
    """WORKDAY_CALENDAR_FILE cannot be used (the message says why; the settings refuse to load)."""


@dataclass(frozen=True)
class WorkdayCalendar:
    years: frozenset[int]
    holidays: frozenset[date]
    workdays: frozenset[date]

    def knows(self, year: int) -> bool:
        return year in self.years

    def is_workday(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def workdays_after(self, start: date, end: date) -> int:
        """Working days after `start`, up to and including `end` (0 when `end` is not after `start`)."""
        days, day = 0, start + timedelta(days=1)
        while day <= end:
            days += self.is_workday(day)
            day += timedelta(days=1)
        return days


def _days(first: date, last: date) -> Iterable[date]:
    while first <= last:
        yield first
        first += timedelta(days=1)


def _build(years: Mapping[int, tuple[list[tuple[date, date]], list[date]]]) -> WorkdayCalendar:
    holidays = {d for periods, _ in years.values() for first, last in periods for d in _days(first, last)}
    workdays = {d for _, worked in years.values() for d in worked}
    return WorkdayCalendar(frozenset(years), frozenset(holidays), frozenset(workdays))


def _built_in() -> dict[int, tuple[list[tuple[date, date]], list[date]]]:
    return {year: ([(date.fromisoformat(a), date.fromisoformat(b)) for a, b in periods],
                   [date.fromisoformat(d) for d in worked])
            for year, (periods, worked) in BUILT_IN.items()}


def _date(text: Any, year: int, where: str) -> date:
    if not isinstance(text, str):
        raise CalendarFileError(f"{where}: a date is a string YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise CalendarFileError(f"{where}: {text!r} is not a date YYYY-MM-DD") from None
    if day.year != year:
        raise CalendarFileError(f"{where}: {text} is not in {year}")
    return day


def parse_file(data: Any) -> dict[int, tuple[list[tuple[date, date]], list[date]]]:
    """The years of a calendar file's JSON document; CalendarFileError for anything else."""
    if not isinstance(data, dict) or not data:
        raise CalendarFileError("the calendar file holds an object of years: {\"2027\": {...}}")
    years: dict[int, tuple[list[tuple[date, date]], list[date]]] = {}
    for key, entry in data.items():
        if not (isinstance(key, str) and len(key) == 4 and key.isdigit() and key.isascii()):
            raise CalendarFileError(f"{key!r}: a year is four digits")
        year = int(key)
        if not isinstance(entry, dict) or set(entry) - {"holidays", "workdays", "source"} \
                or not isinstance(entry.get("holidays"), list) or not isinstance(entry.get("workdays", []), list):
            raise CalendarFileError(f"{key}: an object with the lists holidays and workdays (and source)")
        periods = []
        for item in entry["holidays"]:
            first, sep, last = item.partition("/") if isinstance(item, str) else (item, "", "")
            a = _date(first, year, f"{key} holidays")
            b = _date(last, year, f"{key} holidays") if sep else a
            if b < a:
                raise CalendarFileError(f"{key} holidays: {item} ends before it starts")
            periods.append((a, b))
        worked = [_date(d, year, f"{key} workdays") for d in entry.get("workdays", [])]
        both = {d for a, b in periods for d in _days(a, b)} & set(worked)
        if both:
            raise CalendarFileError(f"{key}: {min(both)} is both a holiday and a working day")
        years[year] = (periods, worked)
    return years


def load_file(path: Path) -> dict[int, tuple[list[tuple[date, date]], list[date]]]:
    try:
        raw = path.read_bytes()[: MAX_FILE_BYTES + 1]
    except OSError as exc:
        raise CalendarFileError(f"WORKDAY_CALENDAR_FILE {path}: cannot be read ({exc.strerror})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise CalendarFileError(f"WORKDAY_CALENDAR_FILE {path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CalendarFileError(f"WORKDAY_CALENDAR_FILE {path}: not JSON ({exc})") from None
    try:
        return parse_file(data)
    except CalendarFileError as exc:
        raise CalendarFileError(f"WORKDAY_CALENDAR_FILE {path}: {exc}") from None


@lru_cache(maxsize=4)
def _calendar(path: str) -> WorkdayCalendar:
    years = _built_in()
    if path:
        years.update(load_file(Path(path)))  # a year in the file replaces the built-in one
    return _build(years)


def calendar() -> WorkdayCalendar:
    """The calendar in force: the built-in years and those of WORKDAY_CALENDAR_FILE (read once per path)."""
    path = get_settings().workday_calendar_file
    return _calendar(str(path) if path else "")


def workdays_after(start: date, end: date) -> int:
    return calendar().workdays_after(start, end)
