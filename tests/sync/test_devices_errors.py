"""Devices (registration, listing, revocation), every pull error, gzip, rejections, bulk tracking helpers."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, func, literal, select, update

from app.core.db import unit_of_work
from app.ledger import changes
from app.ledger.models import SyncCounter, SyncLog
from app.people.models import Resident
from app.places.models import Dwelling
from app.sync.models import SyncDevice, SyncRejection
from tests.conftest import Api, World
from tests.sync.helpers import PULL, V1, ids, pull, pull_raw, rows


def test_device_is_registered_and_kept_up_to_date(api: Api, engine: Engine) -> None:
    first = pull(api, "worker1", headers={"X-Device-Time": "1700000000000"})
    pull(api, "worker1", first["timestamp"])
    (device,) = rows(engine, select(SyncDevice))
    row = device[0]
    assert (row.device_id, row.app_version, row.schema_version, row.pulls) == ("phone-0001", "1.0.0", 1, 2)
    assert row.last_cursor is not None and row.last_pull_at is not None and row.clock_skew_ms < 0
    assert row.scope_prefixes is not None and row.pending_scope is None


def test_devices_are_listed_in_scope_and_revoked(api: Api, world: World, engine: Engine) -> None:
    pull(api, "worker1")
    pull(api, "worker3", device="phone-0003")
    own = api.as_("worker1", "GET", V1 + "/sync/devices").json()["items"]
    assert [(d["username"], d["device_id"]) for d in own] == [("worker1", "phone-0001")]
    street = api.as_("sup_street", "GET", V1 + "/sync/devices").json()["items"]
    assert {d["username"] for d in street} == {"worker1"}
    assert {d["username"] for d in api.as_("admin", "GET", V1 + "/sync/devices").json()["items"]} == \
        {"worker1", "worker3"}
    device_id = own[0]["id"]
    assert api.as_("worker1", "POST", f"{V1}/sync/devices/{device_id}/revoke").status_code == 403
    assert api.as_("sup_other", "POST", f"{V1}/sync/devices/{device_id}/revoke").status_code == 404
    revoked = api.as_("sup_street", "POST", f"{V1}/sync/devices/{device_id}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = pull_raw(api, "worker1")
    assert (refused.status_code, refused.json()["code"]) == (403, "device_revoked")
    # Another phone of the same worker still syncs.
    assert pull_raw(api, "worker1", device="phone-0009").status_code == 200
    assert rows(engine, select(SyncDevice.revoked_by).where(SyncDevice.id == device_id))[0][0] == \
        world.users["sup_street"]


@pytest.mark.parametrize(("params", "headers", "code"), [
    ({"schema_version": 1}, {}, "device_id_required"),
    ({"schema_version": 1}, {"X-Device-Id": "short"}, "device_id_required"),
    ({"schema_version": 1}, {"X-Device-Id": "bad device id!"}, "device_id_required"),
    ({"schema_version": 5}, {"X-Device-Id": "phone-0001"}, "schema_version_unsupported"),
    ({"schema_version": 1, "last_pulled_at": "abc"}, {"X-Device-Id": "phone-0001"}, "cursor_invalid"),
    ({"schema_version": 1, "last_pulled_at": "-1"}, {"X-Device-Id": "phone-0001"}, "cursor_invalid"),
    ({"schema_version": 1, "last_pulled_at": "999999999"}, {"X-Device-Id": "phone-0001"}, "cursor_ahead"),
    ({"schema_version": 1, "last_pulled_at": "1", "migration": "{nope"}, {"X-Device-Id": "phone-0001"},
     "migration_invalid"),
    ({"schema_version": 1, "last_pulled_at": "1", "migration": json.dumps({"tables": []})},
     {"X-Device-Id": "phone-0001"}, "migration_invalid"),
    ({"schema_version": 1, "last_pulled_at": "1", "migration": json.dumps({"from": 1, "tables": [3]})},
     {"X-Device-Id": "phone-0001"}, "migration_invalid"),
])
def test_pull_errors(api: Api, params: dict[str, object], headers: dict[str, str], code: str) -> None:
    response = api.as_("worker1", "GET", PULL, params=params, headers=headers)
    assert (response.status_code, response.json()["code"]) == (422, code)


def test_pull_needs_schema_version_and_a_field_role(api: Api) -> None:
    missing = api.as_("worker1", "GET", PULL, headers={"X-Device-Id": "phone-0001"})
    assert missing.status_code == 422
    for user in ("admin", "auditor"):
        assert pull_raw(api, user).status_code == 403
    assert pull_raw(api, "sup_street").status_code == 200


def test_gzip_only_when_accepted(api: Api) -> None:
    zipped = pull_raw(api, "worker1", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    plain = pull_raw(api, "worker1", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert zipped.json()["changes"] == plain.json()["changes"]
    login = api.client.post(V1 + "/auth/login", json={"username": "worker1", "password": "x"},
                            headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in login.headers


def test_rejected_records_come_back_with_the_servers_truth(api: Api, world: World, engine: Engine) -> None:
    first = pull(api, "worker1")
    device_row = rows(engine, select(SyncDevice.id))[0][0]
    resident = rows(engine, select(Resident.id).where(Resident.area_path.startswith(world.community("c1")["path"]),
                                                      Resident.status == "REGISTERED"))[0][0]
    with unit_of_work(engine=engine) as session:  # what the push does with a refused update and create
        session.add(SyncRejection(device_row_id=device_row, table_name="residents", record_id=resident,
                                  kind="update", code="field_not_writable"))
        session.add(SyncRejection(device_row_id=device_row, table_name="visits", record_id="abcdefgh12345678",
                                  kind="create", code="out_of_scope"))
        changes.stage(session)
    step = pull(api, "worker1", first["timestamp"])
    assert ids(step, "residents") == {resident} and ids(step, "visits", "deleted") == {"abcdefgh12345678"}
    # Sent again until the device shows a cursor past the rejection, then reconciled.
    again = pull(api, "worker1", first["timestamp"])
    assert ids(again, "residents") == {resident}
    done = pull(api, "worker1", again["timestamp"])
    assert ids(done, "residents") == set() and ids(done, "visits", "deleted") == set()
    assert {r for (r,) in rows(engine, select(SyncRejection.reconciled))} == {True}


def test_bulk_helpers_log_rows_and_moves(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    first = pull(api, "worker1")
    dwellings = Dwelling.__table__  # type: ignore[attr-defined]
    with unit_of_work(engine=engine) as session:
        session.execute(update(dwellings).where(dwellings.c.community_id == c1["id"]).values(kind="own"))
        changes.mark_rows(session, dwellings, dwellings.c.community_id == c1["id"], fields=["kind"])
    step = pull(api, "worker1", first["timestamp"])
    assert ids(step, "dwellings") == set(world.dwellings[c1["id"]])
    assert {r["kind"] for r in step["changes"]["dwellings"]["updated"]} == {"own"}
    # A bulk area move (as a division relocation does): exit under the old path, upsert under the new one.
    old, new = c1["path"], "/elsewhere/"
    with unit_of_work(engine=engine) as session:
        before = session.execute(select(SyncCounter.seq)).scalar_one()
        session.execute(update(dwellings).where(dwellings.c.area_path.startswith(old)).values(
            area_path=literal(new) + func.substr(dwellings.c.area_path, len(old) + 1)))
        changes.mark_area_move(session, dwellings, old, new)
    logged = rows(engine, select(SyncLog.op, SyncLog.area_path, SyncLog.seq).where(SyncLog.seq > before))
    assert {op for op, _, _ in logged} == {"exit", "upsert"}
    assert {a.startswith(old) for op, a, _ in logged if op == "exit"} == {True}
    assert {a.startswith(new) for op, a, _ in logged if op == "upsert"} == {True}
    assert len({s for _, _, s in logged}) == 1  # one transaction, one sequence number
    gone = pull(api, "worker1", step["timestamp"])
    assert ids(gone, "dwellings", "deleted") == set(world.dwellings[c1["id"]])
    with pytest.raises(ValueError), unit_of_work(engine=engine) as session:
        changes.mark_area_move(session, SyncLog.__table__, old, new)  # type: ignore[attr-defined]


def test_bulk_resident_move_carries_their_documents(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    first = pull(api, "worker1")
    docs = ids(first, "fp_documents")
    assert docs
    residents = Resident.__table__  # type: ignore[attr-defined]
    old, new = c1["path"], "/elsewhere/"
    with unit_of_work(engine=engine) as session:
        session.execute(update(residents).where(residents.c.area_path.startswith(old)).values(
            area_path=literal(new) + func.substr(residents.c.area_path, len(old) + 1)))
        changes.mark_area_move(session, residents, old, new)
    gone = pull(api, "worker1", first["timestamp"])
    # (Residents who had left are named too: deleting what a phone does not hold is a no-op.)
    assert ids(gone, "residents", "deleted") >= ids(first, "residents") and ids(gone, "residents") == set()
    assert ids(gone, "fp_documents", "deleted") >= docs
