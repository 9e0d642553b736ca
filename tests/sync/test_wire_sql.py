"""Pulls read times and dates as epoch milliseconds computed by the database, and every value straight from the
driver; they must be exactly what the Python conversion (`to_raw`, used for conflicts and by push) gives, on both
databases, for every table (booleans included)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlmodel import Session

from app.core.types import city_today
from app.sync.wire import MODELS, driver_rows, shape, to_ms, to_raw
from tests.conftest import Api, World
from tests.factories import visit_body
from tests.sync.helpers import pull
from tests.visits import VISITS, resident


def test_sql_epoch_conversion_matches_python(api: Api, world: World, engine: Engine) -> None:
    who = resident(engine, world)
    recorded = api.as_("worker1", "POST", VISITS, json=visit_body(
        who, services=[{"item_code": "education", "quantity": 1}],
        checkin={"lat": who["lat"], "lng": who["lng"], "coord_system": "gcj02", "accuracy_m": 9.5,
                 "provider": "gps"}, follow_up={"due_date": city_today().isoformat(), "reason": "other"}))
    assert recorded.status_code == 201, recorded.text
    pull(api, "worker1")
    checked, seen = 0, set()
    with Session(engine) as session:
        dialect = session.get_bind().dialect.name
        for name, model in MODELS.items():
            s = shape(name)
            table = model.__table__  # type: ignore[attr-defined]
            rows = driver_rows(session, select(*s.select_list(dialect)).select_from(table).order_by(table.c.id)
                               .limit(200))
            records = {str(r.id): r for r in session.execute(select(model).order_by(table.c.id).limit(200)).scalars()}
            for row in rows:
                got = s.record(row)
                expected = to_raw(name, records[got["id"]])
                assert got == expected, name
                # ... and of the same JSON types (0 == False in Python, not on the phone)
                assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in expected.items()}, name
                checked += 1
                seen.add(name)
    assert checked > 500 and {"visits", "service_deliveries", "tasks"} <= seen


def test_to_ms_truncates_to_the_millisecond() -> None:
    assert to_ms(datetime(2026, 11, 29, 10, 0, 0, 277_999, tzinfo=UTC)) % 1000 == 277
    assert to_ms(datetime(2026, 11, 29, 10, 0, 0, 0, tzinfo=UTC)) % 1000 == 0


def test_sql_epoch_of_a_time_just_before_the_second_is_not_rounded_up(engine: Engine) -> None:
    """SQLite's strftime('%s') reads the time to the millisecond, rounded: 10:00:00.9996 became 10:00:01, and the
    pull sent a phone a time one second later than the server's (`to_ms`) — seen once as a flaky convergence test."""
    from app.catalog.models import ServiceItem

    with Session(engine) as session:
        dialect = session.get_bind().dialect.name
        item = session.execute(select(ServiceItem).limit(1)).scalar_one()
        cases = [datetime(2026, 11, 29, 10, 0, 0, micro, tzinfo=UTC) for micro in (999_600, 999_999, 999_499, 500)]
        s = shape("service_items")
        table = ServiceItem.__table__  # type: ignore[attr-defined]
        for moment in cases:
            item.created_at = moment
            session.add(item)
            session.commit()
            [row] = driver_rows(session, select(*s.select_list(dialect)).where(table.c.id == item.id))
            assert s.record(row)["created_at"] == to_ms(moment), moment
