"""The late rule of tenant reports counts China's official working days: public holidays are not working days,
the make-up weekends (调休上班) are, and a year outside the calendar (built in, or WORKDAY_CALENDAR_FILE) counts
Monday to Friday."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.core import workdays
from app.core.config import Settings, get_settings
from app.sharing.landlords.tenants import service
from tests.assertions import ok
from tests.conftest import Api, World
from tests.factories import valid_id
from tests.sharing.landlord_helpers import PARTNER, Landlord, confirmed_landlord, move_in_body

# 2024's 国庆 as the State Council announced it (国办发明电〔2023〕7号): Oct 1–7 off, Sep 29 (Sun) and Oct 12 (Sat)
# worked. 2024 is not built in: these tests give it through a file.
FILE_2024 = {"2024": {"holidays": ["2024-10-01/2024-10-07"], "workdays": ["2024-09-29", "2024-10-12"],
                      "source": "国办发明电〔2023〕7号"}}


def report(api: Api, monkeypatch: pytest.MonkeyPatch, landlord: Landlord, moved_in: str, reported: str,
           seq: str) -> dict[str, Any]:
    monkeypatch.setattr(service, "today", lambda: date.fromisoformat(reported))
    body = move_in_body(landlord.dwelling_id, moved_in_on=moved_in, id_number=valid_id(f"41160219950505{seq}"))
    return dict(ok(api.as_(landlord.phone, "POST", f"{PARTNER}/move-ins", json=body), 201))


def calendar_file(tmp_path: Path, data: Any, monkeypatch: pytest.MonkeyPatch | None = None) -> Path:
    path = tmp_path / "workdays.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    if monkeypatch is not None:
        monkeypatch.setattr(get_settings(), "workday_calendar_file", path)
    return path


def test_national_day_2026_is_not_counted_and_its_make_up_saturday_is(api: Api, world: World,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    landlord = confirmed_landlord(api, world)
    # Moved in on Wed Sep 30; Oct 1–7 are holidays; Thu 8, Fri 9 and the make-up Sat 10 are working days.
    assert report(api, monkeypatch, landlord, "2026-09-30", "2026-10-10", "002")["late"] is False
    assert report(api, monkeypatch, landlord, "2026-09-30", "2026-10-12", "010")["late"] is True  # Mon 12: the 4th
    # Moved in on the last holiday: Thu 8, Fri 9, Sat 10 (worked) make 3; Mon 12 is the 4th. Counting Mon–Fri only,
    # Mon 12 would be the 3rd and the report on time.
    assert report(api, monkeypatch, landlord, "2026-10-07", "2026-10-10", "029")["late"] is False
    assert report(api, monkeypatch, landlord, "2026-10-07", "2026-10-12", "037")["late"] is True
    # Sun Sep 20 was worked (for 国庆): after Thu Sep 17, Fri 18, Sun 20 and Mon 21 make 3 by Monday.
    assert report(api, monkeypatch, landlord, "2026-09-17", "2026-09-21", "045")["late"] is False
    assert report(api, monkeypatch, landlord, "2026-09-17", "2026-09-22", "053")["late"] is True


def test_the_calendar_of_2025_and_2026() -> None:
    cal = workdays.calendar()
    assert cal.knows(2025) and cal.knows(2026) and not cal.knows(2024)
    holidays = ["2025-01-01", "2025-01-28", "2025-02-04", "2025-05-05", "2025-06-02", "2025-10-08", "2026-01-02",
                "2026-02-16", "2026-02-23", "2026-04-06", "2026-05-05", "2026-06-19", "2026-09-25", "2026-10-07"]
    worked = ["2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11", "2026-01-04", "2026-02-14",
              "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"]
    assert not [d for d in holidays if cal.is_workday(date.fromisoformat(d))]
    assert all(cal.is_workday(date.fromisoformat(d)) and date.fromisoformat(d).weekday() >= 5 for d in worked)
    assert cal.is_workday(date(2026, 10, 8)) and not cal.is_workday(date(2026, 10, 11))
    # 2026: 365 days, 104 weekend days; weekdays off: 元旦 2 (Jan 1, 2), 春节 6 (Feb 16–20, 23), 清明 1 (Apr 6),
    # 劳动节 3 (May 1, 4, 5), 端午 1, 中秋 1, 国庆 5 (Oct 1, 2, 5, 6, 7); 6 make-up days: 248, as every year with
    # 13 statutory holidays (365 − 104 − 13). 2025 too: 261 weekdays − 18 off + 5 make-up days.
    assert cal.workdays_after(date(2025, 12, 31), date(2026, 12, 31)) == 365 - 104 - 2 - 6 - 1 - 3 - 1 - 1 - 5 + 6
    assert cal.workdays_after(date(2024, 12, 31), date(2025, 12, 31)) == 248 == 261 - 18 + 5
    assert cal.workdays_after(date(2026, 10, 1), date(2026, 9, 30)) == 0


def test_an_unknown_year_counts_monday_to_friday(api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    landlord = confirmed_landlord(api, world)
    # 2024 is not built in: Oct 1–4 count as working days, the make-up Saturday Oct 12 does not.
    assert report(api, monkeypatch, landlord, "2024-09-30", "2024-10-03", "002")["late"] is False
    assert report(api, monkeypatch, landlord, "2024-09-30", "2024-10-04", "010")["late"] is True
    assert report(api, monkeypatch, landlord, "2024-10-09", "2024-10-12", "029")["late"] is False


def test_a_year_from_the_calendar_file(api: Api, world: World, monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    calendar_file(tmp_path, FILE_2024, monkeypatch)
    assert workdays.calendar().knows(2024) and workdays.calendar().knows(2026)  # the built-in years stay
    landlord = confirmed_landlord(api, world)
    assert report(api, monkeypatch, landlord, "2024-09-30", "2024-10-04", "002")["late"] is False  # all holidays
    assert report(api, monkeypatch, landlord, "2024-09-30", "2024-10-10", "010")["late"] is False  # 8, 9, 10
    assert report(api, monkeypatch, landlord, "2024-09-30", "2024-10-11", "029")["late"] is True
    # The make-up Saturday Oct 12 is a working day: Oct 10, 11, 12 make 3, Mon 14 is the 4th.
    assert report(api, monkeypatch, landlord, "2024-10-09", "2024-10-12", "037")["late"] is False
    assert report(api, monkeypatch, landlord, "2024-10-09", "2024-10-14", "045")["late"] is True
    # The make-up Sunday Sep 29: after Thu Sep 26, Fri 27 and Sun 29 make 2, Mon 30 the 3rd.
    assert report(api, monkeypatch, landlord, "2024-09-26", "2024-09-30", "053")["late"] is False


def test_the_file_replaces_a_built_in_year(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calendar_file(tmp_path, {"2026": {"holidays": ["2026-12-25"]}}, monkeypatch)
    cal = workdays.calendar()
    assert not cal.is_workday(date(2026, 12, 25)) and cal.is_workday(date(2026, 10, 1))
    assert not cal.is_workday(date(2026, 10, 10))  # Saturday, no longer a make-up day


@pytest.mark.parametrize(("data", "message"), [
    ([], "an object of years"),
    ({"27": {"holidays": []}}, "four digits"),
    ({"2027": {"workdays": []}}, "lists holidays and workdays"),
    ({"2027": {"holidays": [], "other": 1}}, "lists holidays and workdays"),
    ({"2027": {"holidays": ["2027-13-01"]}}, "not a date"),
    ({"2027": {"holidays": [20270101]}}, "a date is a string"),
    ({"2027": {"holidays": ["2026-12-31"]}}, "not in 2027"),
    ({"2027": {"holidays": ["2027-02-10/2027-02-06"]}}, "ends before it starts"),
    ({"2027": {"holidays": ["2027-02-06/2027-02-14"], "workdays": ["2027-02-07"]}}, "both a holiday"),
])
def test_a_bad_calendar_file_stops_the_settings(tmp_path: Path, data: Any, message: str) -> None:
    path = calendar_file(tmp_path, data)
    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None, workday_calendar_file=path)


def test_an_unreadable_calendar_file_stops_the_settings(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot be read"):
        Settings(_env_file=None, workday_calendar_file=tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(ValidationError, match="not JSON"):
        Settings(_env_file=None, workday_calendar_file=tmp_path / "bad.json")
    assert Settings(_env_file=None, workday_calendar_file="").workday_calendar_file is None
    good = calendar_file(tmp_path, FILE_2024)
    assert Settings(_env_file=None, workday_calendar_file=good).workday_calendar_file == good
