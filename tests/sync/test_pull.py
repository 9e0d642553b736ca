"""Pull: first pull contents and scope, wire types, incremental changes, scope exits and assignment changes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from app.cycle.models import Task
from app.ledger.models import AuditEvent, SyncLog
from app.people.models import FpDocument, Resident
from app.places.models import Division, Dwelling
from app.sync.wire import columns
from app.visits.models import ServiceDelivery, Visit
from tests.conftest import Api, World
from tests.factories import phone_visit_body, register_resident, valid_id
from tests.sync.helpers import V1, ids, pull, rows


def person(serial: str, name: str = "同步测试") -> dict[str, Any]:
    """The fields of a resident registered for a pull test (`serial`: their ID number's sequence)."""
    return {"name": name, "id_number": valid_id("41170219900101" + serial), "hukou_code": "411702",
            "arrival_date": "2026-09-01", "phone": None}


def test_first_pull_sends_the_scope_and_nothing_else(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    resident = register_resident(api, "worker1", world.dwellings[c1["id"]][0], **person("901"))
    visit = api.as_("worker1", "POST", V1 + "/visits", json=phone_visit_body(resident["id"]))
    assert visit.status_code == 201, visit.text
    far = register_resident(api, "worker3", world.dwellings[world.community("c3")["id"]][0], **person("902"))
    body = pull(api, "worker1")
    changes = body["changes"]
    assert set(changes) == {"divisions", "service_items", "dwellings", "residents", "fp_documents", "visits",
                            "service_deliveries", "tasks"}
    assert all(c["created"] == [] and c["deleted"] == [] for c in changes.values())
    path = c1["path"]
    expected = {
        "divisions": {r for (r,) in rows(engine, select(Division.id).where(Division.path.startswith(path)))},
        "dwellings": {r for (r,) in rows(engine, select(Dwelling.id).where(Dwelling.area_path.startswith(path)))},
        "residents": {r for (r,) in rows(engine, select(Resident.id).where(
            Resident.area_path.startswith(path), Resident.status == "REGISTERED"))},
        "fp_documents": {r for (r,) in rows(engine, select(FpDocument.id).join(
            Resident, Resident.id == FpDocument.resident_id).where(Resident.area_path.startswith(path),
                                                                   Resident.status == "REGISTERED"))},
        "visits": {r for (r,) in rows(engine, select(Visit.id).where(Visit.area_path.startswith(path)))},
        "tasks": {r for (r,) in rows(engine, select(Task.id).where(Task.area_path.startswith(path)))},
        "service_deliveries": {r for (r,) in rows(engine, select(ServiceDelivery.id).where(
            ServiceDelivery.area_path.startswith(path)))},
    }
    for table, want in expected.items():
        assert ids(body, table) == want, table
    assert resident["id"] in ids(body, "residents") and far["id"] not in ids(body, "residents")
    assert visit.json()["id"] in ids(body, "visits")
    assert len(expected["residents"]) > 10 and expected["tasks"]
    assert len(ids(body, "service_items")) >= 8
    # Nothing of another community on any table.
    other = world.community("c2")["path"]
    assert not ids(body, "residents") & {r for (r,) in rows(engine, select(Resident.id).where(
        Resident.area_path.startswith(other)))}
    assert isinstance(body["timestamp"], int)


def test_wire_types(api: Api, world: World) -> None:
    c1 = world.community("c1")
    resident = register_resident(api, "worker1", world.dwellings[c1["id"]][0], **person("903"))
    body = pull(api, "worker1")
    raw = next(r for r in body["changes"]["residents"]["updated"] if r["id"] == resident["id"])
    assert set(raw) == set(columns("residents"))
    assert not {"area_path", "district_code", "id_accepted_by", "anonymised_at", "created_by"} & set(raw)
    assert raw["birth_date"] == 631152000000  # 1990-01-01, midnight UTC, epoch ms
    assert raw["arrival_date"] == 1788220800000  # 2026-09-01
    assert isinstance(raw["created_at"], int) and raw["created_at"] > 1_700_000_000_000
    assert raw["id_verified"] is True and raw["key_person"] is False
    assert raw["version"] == 1 and raw["left_on"] is None and raw["name"] == "同步测试"
    dwelling = body["changes"]["dwellings"]["updated"][0]
    assert isinstance(dwelling["active"], bool) and "area_path" not in dwelling
    assert dwelling["lat"] is None or isinstance(dwelling["lat"], float)
    item = body["changes"]["service_items"]["updated"][0]
    assert isinstance(item["effective_from"], int) and isinstance(item["sort_order"], int)
    # Health data has no column anywhere.
    for table in body["changes"]:
        assert not {"contraception", "pregnancy", "children"} & set(columns(table))


def test_incremental_pull_follows_rest_writes_and_moves(api: Api, world: World, engine: Engine) -> None:
    c1, c2 = world.community("c1"), world.community("c2")
    first1, first2 = pull(api, "worker1"), pull(api, "worker2", device="phone-0002")
    empty = pull(api, "worker1", first1["timestamp"])
    assert all(c == {"created": [], "updated": [], "deleted": []} for c in empty["changes"].values())
    assert empty["timestamp"] >= first1["timestamp"]
    # An empty pull moves nothing: the same cursor comes back.
    assert pull(api, "worker1", empty["timestamp"])["timestamp"] == empty["timestamp"]

    resident = register_resident(api, "worker1", world.dwellings[c1["id"]][0], **person("904"))
    patched = api.as_("worker1", "PATCH", f"{V1}/residents/{resident['id']}", json={"version": 1, "occupation": "厨师"})
    assert patched.status_code == 200, patched.text
    step = pull(api, "worker1", first1["timestamp"])
    assert step["timestamp"] > first1["timestamp"]
    assert ids(step, "residents") == {resident["id"]}
    raw = step["changes"]["residents"]["updated"][0]
    assert (raw["occupation"], raw["version"]) == ("厨师", 2)
    assert ids(step, "residents", "deleted") == set()
    # The neighbour's phone gets nothing of it.
    other = pull(api, "worker2", first2["timestamp"], device="phone-0002")
    assert resident["id"] not in ids(other, "residents") | ids(other, "residents", "deleted")

    moved = api.as_("sup_street", "POST", f"{V1}/residents/{resident['id']}/move", json={
        "version": 2, "dwelling_id": world.dwellings[c2["id"]][0], "moved_on": "2026-10-01"})
    assert moved.status_code == 200, moved.text
    log = rows(engine, select(SyncLog.op, SyncLog.area_path).where(SyncLog.record_id == resident["id"],
                                                                   SyncLog.table_name == "residents"))
    assert ("exit", c1["path"]) in {(op, area[:len(c1["path"])]) for op, area in log}
    gone = pull(api, "worker1", step["timestamp"])
    assert resident["id"] in ids(gone, "residents", "deleted")
    assert resident["id"] not in ids(gone, "residents")
    arrived = pull(api, "worker2", first2["timestamp"], device="phone-0002")
    assert resident["id"] in ids(arrived, "residents")
    assert arrived["changes"]["residents"]["updated"][0]["community_id"] == c2["id"]


def test_catalogue_and_documents_are_tracked(api: Api, world: World) -> None:
    c1 = world.community("c1")
    first, far_first = pull(api, "worker1"), pull(api, "worker3", device="phone-0003")
    item_id = first["changes"]["service_items"]["updated"][0]["id"]
    item = api.as_("admin", "GET", V1 + "/catalog").json()["items"]
    version = next(i for i in item if i["id"] == item_id)["version"]
    edited = api.as_("admin", "PATCH", f"{V1}/catalog/items/{item_id}", json={"version": version, "note": "x",
                                                                                "unit": "份"})
    assert edited.status_code == 200, edited.text
    resident = register_resident(api, "worker1", world.dwellings[c1["id"]][0], **person("905"))
    doc = api.as_("worker1", "POST", f"{V1}/residents/{resident['id']}/fp-documents", json={"status": "valid"})
    assert doc.status_code == 201, doc.text
    step = pull(api, "worker1", first["timestamp"])
    assert item_id in ids(step, "service_items")
    assert ids(step, "fp_documents") == {doc.json()["id"]}
    # worker3, another district, also gets the catalogue change but not the document.
    far = pull(api, "worker3", far_first["timestamp"], device="phone-0003")
    assert item_id in ids(far, "service_items") and ids(far, "fp_documents") == set()


def test_assignment_change_sends_the_new_scope_and_deletes_the_old(api: Api, world: World, engine: Engine) -> None:
    c1, c2 = world.community("c1"), world.community("c2")
    first = pull(api, "worker1")
    old_residents = ids(first, "residents")
    user = api.as_("admin", "GET", f"{V1}/users/{world.users['worker1']}").json()
    changed = api.as_("admin", "PATCH", f"{V1}/users/{world.users['worker1']}",
                      json={"version": user["version"], "division_ids": [c2["id"]]})
    assert changed.status_code == 200, changed.text
    new_residents = {r for (r,) in rows(engine, select(Resident.id).where(
        Resident.area_path.startswith(c2["path"]), Resident.status == "REGISTERED"))}
    step = pull(api, "worker1", first["timestamp"])
    assert ids(step, "residents") == new_residents
    assert ids(step, "residents", "deleted") == old_residents
    assert c1["id"] in ids(step, "divisions", "deleted") and c2["id"] in ids(step, "divisions")
    # The response was lost: the retry with the old cursor gets the same again.
    retry = pull(api, "worker1", first["timestamp"])
    assert ids(retry, "residents") == new_residents and ids(retry, "residents", "deleted") == old_residents
    # Once the phone pulls with the new cursor the scope is settled: only changes from now on.
    settled = pull(api, "worker1", retry["timestamp"])
    assert ids(settled, "residents") == set() and ids(settled, "residents", "deleted") == set()


def test_migration_resends_named_tables(api: Api, world: World) -> None:
    first = pull(api, "worker1")
    again = pull(api, "worker1", first["timestamp"],
                 migration={"from": 1, "tables": ["tasks"], "columns": [{"table": "dwellings", "columns": ["x"]}]})
    assert ids(again, "dwellings") == ids(first, "dwellings") and ids(again, "tasks") == ids(first, "tasks")
    assert ids(again, "residents") == set()


def test_pull_is_audited_without_personal_data(api: Api, engine: Engine) -> None:
    pull(api, "worker1")
    events = rows(engine, select(AuditEvent.action, AuditEvent.detail, AuditEvent.actor_id).where(
        AuditEvent.action == "sync.pull"))
    assert len(events) == 1
    assert '"updated":' in events[0][1].replace(" ", "") and "同步" not in events[0][1]
