"""The ledger's stamp at commit: rows logged by id (`mark_ids`) or from values in hand (`mark_new`, the form every
visit written uses) take the commit's sequence number, in every form of the id list; a row of a stamped table
written through the ORM is numbered even when its writer did not `stage` the unit of work."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, text

from app.catalog.models import ServiceItem
from app.core.db import unit_of_work
from app.ledger import changes
from app.ledger.models import SyncLog
from app.places.models import Dwelling
from app.sync.models import SyncDevice, SyncRejection
from tests.conftest import Api, World
from tests.sync.helpers import pull, rows

DWELLINGS = Dwelling.__table__  # type: ignore[attr-defined]


def _counter(engine: Engine) -> int:
    return int(rows(engine, text("SELECT seq FROM sync_counter WHERE id = 1"))[0][0])


def test_mark_ids_logs_the_rows_with_the_commit_number(engine: Engine, world: World) -> None:
    one, two, three = world.dwellings[world.community("c1")["id"]][:3]
    long = [two, three, *(f"absent-{n:02d}" for n in range(40))]  # past the short list: built for the call
    for ids in ([one], [one, two, "absent"], long):
        with unit_of_work(engine=engine) as session:
            changes.mark_ids(session, DWELLINGS, ids)
        seq = _counter(engine)
        logged = rows(engine, select(SyncLog.record_id, SyncLog.op, SyncLog.area_path, SyncLog.fields)
                      .where(SyncLog.seq == seq).order_by(SyncLog.record_id))
        present = sorted(i for i in ids if not i.startswith("absent"))
        areas = dict(rows(engine, select(Dwelling.id, Dwelling.area_path).where(Dwelling.id.in_(present))))
        assert [(r[0], r[1], r[2], r[3]) for r in logged] == [(i, "upsert", areas[i], None) for i in present]


def test_a_stamped_row_is_numbered_without_stage(api: Api, engine: Engine, world: World) -> None:
    pull(api, "worker1")  # registers the phone
    device = rows(engine, select(SyncDevice.id).limit(1))[0][0]
    before = _counter(engine)
    with unit_of_work(engine=engine) as session:
        session.add(SyncRejection(device_row_id=device, table_name="dwellings", record_id="rejected-0000000001",
                                  kind="update", code="test"))
    seq_at = rows(engine, select(SyncRejection.seq_at).where(SyncRejection.record_id == "rejected-0000000001"))[0][0]
    assert seq_at == _counter(engine) == before + 1


def test_mark_new_logs_the_values_given_with_the_commit_number(engine: Engine, world: World) -> None:
    """`mark_new` (a visit and its deliveries): the rows as given, numbered with the commit, in one insert with the
    transaction's other log rows; refused for a table without an area of its own."""
    one, two = world.dwellings[world.community("c1")["id"]][:2]
    with unit_of_work(engine=engine) as session:
        changes.mark_new(session, DWELLINGS, [(one, "/given/path/", "410102"), (two, "/other/", None)])
        changes.mark_ids(session, DWELLINGS, [one])
    seq = _counter(engine)
    logged = rows(engine, select(SyncLog.record_id, SyncLog.op, SyncLog.area_path, SyncLog.district_code,
                                 SyncLog.fields).where(SyncLog.seq == seq).order_by(SyncLog.id))
    area, district = rows(engine, select(Dwelling.area_path, Dwelling.district_code).where(Dwelling.id == one))[0]
    assert sorted(tuple(r) for r in logged) == sorted([(one, "upsert", "/given/path/", "410102", None),
                                                       (two, "upsert", "/other/", None, None),
                                                       (one, "upsert", area, district, None)])
    with pytest.raises(ValueError, match="area of its own"), unit_of_work(engine=engine) as session:
        changes.mark_new(session, ServiceItem.__table__, [("x", "/", None)])  # type: ignore[attr-defined]
