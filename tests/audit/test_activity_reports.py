"""Worker activity's `report_timeliness`: the monthly reports of the communities in each row's area for the
period's ended months — due, submitted (a returned report is not), and first submitted by the due day."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from app.core.types import city_today, utcnow
from app.cycle.reports.models import ReportSubmission
from tests.assertions import ok
from tests.conftest import Api, World

ACTIVITY = "/api/v1/audit/activity"
LAST = city_today().replace(day=1) - timedelta(days=1)  # last day of last month
BEFORE = LAST.replace(day=1) - timedelta(days=1)  # last day of the month before
MONTHS = [BEFORE.strftime("%Y-%m"), LAST.strftime("%Y-%m")]


def submit(engine: Engine, community: dict[str, Any], month: str, state: str, *, late: bool) -> None:
    year, m = map(int, month.split("-"))
    due = date(year + m // 12, m % 12 + 1, 25)
    with Session(engine) as session:
        session.add(ReportSubmission(
            community_id=community["id"], month=month, area_path=community["path"],
            district_code=community["district_code"], state=state, due_on=due, late=late,
            first_submitted_at=utcnow(), submitted_at=utcnow(), submitted_by="x" * 32, figures="{}"))
        session.commit()


def rows_by_id(api: Api, group: str, start: date, end: date) -> dict[str, dict[str, Any]]:
    body = ok(api.as_("sup_street", "GET", ACTIVITY, params={"from": start.isoformat(), "to": end.isoformat(),
                                                              "group": group}))
    return {r["id"]: r for r in body["rows"]}


def test_report_timeliness_by_hand(api: Api, engine: Engine, world: World) -> None:
    c1, c2, c3 = (world.community(k) for k in ("c1", "c2", "c3"))
    street = [c for c in world.communities if c["parent_id"] == c1["parent_id"]]
    submit(engine, c1, MONTHS[1], "approved", late=False)
    submit(engine, c1, MONTHS[0], "returned", late=False)  # sent back: not submitted
    submit(engine, c2, MONTHS[1], "submitted", late=True)
    submit(engine, c3, MONTHS[1], "approved", late=False)  # another district: in nobody's row here
    start = BEFORE.replace(day=1)

    by_community = rows_by_id(api, "community", start, LAST)
    assert by_community[c1["id"]]["report_timeliness"] == {
        "months": MONTHS, "due": 2, "submitted": 1, "on_time": 1, "completeness": 0.5, "timeliness": 0.5}
    assert by_community[c2["id"]]["report_timeliness"] == {
        "months": MONTHS, "due": 2, "submitted": 1, "on_time": 0, "completeness": 0.5, "timeliness": 0.0}
    assert c3["id"] not in by_community

    [street_row] = rows_by_id(api, "street", start, LAST).values()
    due = 2 * len(street)
    assert street_row["report_timeliness"] == {
        "months": MONTHS, "due": due, "submitted": 2, "on_time": 1,
        "completeness": round(2 / due, 4), "timeliness": round(1 / due, 4)}

    worker1 = rows_by_id(api, "worker", start, LAST)[world.users["worker1"]]
    assert worker1["report_timeliness"] == by_community[c1["id"]]["report_timeliness"]


def test_no_report_is_due_for_a_running_month(api: Api, engine: Engine, world: World) -> None:
    submit(engine, world.community("c1"), MONTHS[1], "approved", late=False)
    today = city_today()
    rows = rows_by_id(api, "community", today.replace(day=1), today)
    assert rows and all(r["report_timeliness"] is None for r in rows.values())
    only_last = rows_by_id(api, "community", LAST, LAST)
    assert only_last[world.community("c1")["id"]]["report_timeliness"]["months"] == [MONTHS[1]]
