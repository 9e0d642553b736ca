"""app/core/bulk.py and `among` on the real database: rows land as the ORM would store them, a clash is the
IntegrityError every handler knows (409, never a 500), and `among` and `ByKey` find exactly the listed rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime, Engine, bindparam, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from app.catalog.models import ServiceItem
from app.core.bulk import BulkWriter, sqlite_utc_text, table_of
from app.core.db import begin
from app.core.queries import SHORT_LIST, ByKey, among
from app.core.types import UTCDateTime, new_id
from app.visits.models import ServiceDelivery, Visit
from tests.conftest import Api, World
from tests.factories import post_visit, visit_body
from tests.visits import resident


@pytest.fixture()
def stored(api: Api, world: World, engine: Engine) -> dict[str, object]:
    """A visit with two deliveries, recorded through the API."""
    return post_visit(api, visit_body(resident(engine, world), services=[
        {"item_code": "education", "quantity": 1}, {"item_code": "contraceptives", "quantity": 2}]))


def _delivery_of(session: Session) -> dict[str, object]:
    """A stored delivery copied to a new id and an item its visit has not had (every key holds)."""
    stored = session.execute(select(ServiceDelivery).limit(1)).scalar_one()
    had = select(col(ServiceDelivery.item_id)).where(col(ServiceDelivery.visit_id) == stored.visit_id)
    item = session.execute(select(col(ServiceItem.id), col(ServiceItem.code)).where(
        col(ServiceItem.id).not_in(had)).limit(1)).one()
    return {**stored.model_dump(), "id": new_id(), "item_id": item.id, "item_code": item.code,
            "delivered_on": date(2026, 11, 30), "created_at": datetime(2026, 11, 30, 8, 15, 30, 123456, tzinfo=UTC)}


def test_rows_read_back_as_the_orm_wrote_them(engine: Engine, stored: dict[str, object]) -> None:
    with Session(engine) as session:
        begin(session, write=True)
        row = _delivery_of(session)
        BulkWriter(session).write_dicts(table_of(ServiceDelivery), [row])
        back = session.execute(select(ServiceDelivery).where(col(ServiceDelivery.id) == row["id"])).scalar_one()
        assert back.model_dump() == row  # times aware, in UTC, to the microsecond; dates as dates
        session.rollback()


def test_a_clash_is_an_integrity_error_and_stores_nothing(engine: Engine, stored: dict[str, object]) -> None:
    with Session(engine) as session:
        begin(session, write=True)
        row = _delivery_of(session)
        writer = BulkWriter(session)
        with pytest.raises(IntegrityError):
            writer.write_dicts(table_of(ServiceDelivery), [row, {**row, "item_code": "other"}])
        session.rollback()
    with Session(engine) as session:
        assert session.get(ServiceDelivery, row["id"]) is None


def test_among_finds_exactly_the_listed_rows(api: Api, world: World, engine: Engine) -> None:
    for skip in range(3):
        post_visit(api, visit_body(resident(engine, world, skip=skip)))
    with Session(engine) as session:
        ids = list(session.execute(select(col(Visit.id)).order_by(col(Visit.id)).limit(3)).scalars())
        assert len(ids) == 3
        found = session.execute(select(col(Visit.id)).where(among(col(Visit.id), [*ids, "no-such-visit"]))).scalars()
        assert sorted(found) == ids
        assert session.execute(select(col(Visit.id)).where(among(col(Visit.id), []))).all() == []
        # A condition like any other: combined, and negated
        both = select(col(Visit.id)).where(among(col(Visit.id), ids), col(Visit.id) != ids[0])
        assert sorted(session.execute(both).scalars()) == ids[1:]
        # One value is `=`; a lone None still matches nothing (as IN (NULL) does), not every NULL.
        assert list(session.execute(select(col(Visit.id)).where(among(col(Visit.id), [ids[1]]))).scalars()) == [ids[1]]
        assert session.execute(select(col(Visit.id)).where(among(col(Visit.corrects_visit_id), [None]))).all() == []
        assert session.execute(select(col(Visit.id)).where(col(Visit.corrects_visit_id).is_(None))).first() is not None


_BY_ID = ByKey(lambda key: select(col(Visit.id)).where(key(col(Visit.id)), col(Visit.id) != bindparam("not_this")))


def test_by_key_finds_exactly_the_listed_rows_in_every_form(api: Api, world: World, engine: Engine) -> None:
    """One statement object per form, built once: one key (`=`), a list of any length (SQLite's IN, PostgreSQL's
    array); a lone None matches nothing; other bound values go along."""
    for skip in range(3):
        post_visit(api, visit_body(resident(engine, world, skip=skip)))
    with Session(engine) as session:
        ids = list(session.execute(select(col(Visit.id)).order_by(col(Visit.id)).limit(3)).scalars())
        assert len(ids) == 3

        def found(keys: list[str | None], not_this: str = "-") -> list[str]:
            stmt, params = _BY_ID(keys, not_this=not_this)
            return sorted(session.execute(stmt, params).scalars())

        assert found([ids[1]]) == [ids[1]]
        assert found([*ids, "no-such-visit"]) == ids
        assert found([*ids], not_this=ids[0]) == ids[1:]
        assert found([]) == []
        assert found([None]) == []
        long = [*ids, *(f"absent-{n}" for n in range(SHORT_LIST))]
        assert found(long) == ids
        assert found(long, not_this=ids[2]) == ids[:2]
        # The same statement objects each time (SQLAlchemy reuses their cache key): nothing built per call.
        assert _BY_ID([ids[0]])[0] is _BY_ID([ids[1]])[0]
        assert _BY_ID(ids)[0] is _BY_ID(ids[:2])[0] is _BY_ID(long)[0]


def test_sqlite_timestamps_are_the_text_the_orm_stores() -> None:
    """The bulk writer's one-call conversion of a `UTCDateTime` on SQLite gives exactly the text of the column's
    own processors (`UTCDateTime`, then SQLAlchemy's SQLite DATETIME), and refuses what they refuse."""
    dialect = sqlite.dialect()
    column = UTCDateTime()
    stored = DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert stored is not None
    east8 = timezone(timedelta(hours=8))
    for value in (datetime(2026, 12, 6, 8, 15, 30, 123456, tzinfo=UTC), datetime(2026, 12, 6, 8, 15, 30, tzinfo=UTC),
                  datetime(2026, 12, 7, 0, 0, 0, 999999, tzinfo=east8), datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
                  datetime(2026, 3, 1, 7, 59, 59, 1, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))):
        assert sqlite_utc_text(value) == stored(column.process_bind_param(value, dialect)), value
    with pytest.raises(ValueError):
        sqlite_utc_text(datetime(2026, 12, 6, 8, 0))  # naive
    with pytest.raises(TypeError):
        sqlite_utc_text("2026-12-06 08:00:00")
