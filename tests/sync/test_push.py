"""Push: create/update semantics, idempotent retries, scope and writable fields, rejections reconciled by the
next pull, deletes, and what other devices see."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import col

from app.core.config import get_settings
from app.core.types import city_date, city_today
from app.cycle.models import Task
from app.ledger.models import AuditEvent, SyncLog
from app.people.models import Resident
from app.places.models import Dwelling
from app.sync.models import SyncDevice, SyncRejection
from app.sync.wire import date_to_ms, to_ms
from tests.conftest import Api, World
from tests.factories import phone_visit_body
from tests.sync.helpers import V1, ids, pull, rows
from tests.sync.push_helpers import changes, codes, cursor, delivery_raw, push, resident_raw, visit_raw, wid


def _log_count(engine: Engine) -> int:
    return int(rows(engine, select(func.count()).select_from(SyncLog))[0][0])


def test_created_resident_is_registered_and_reaches_other_devices(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    dwelling = world.dwellings[c1["id"]][0]
    last = cursor(api, "worker1")
    other_last = cursor(api, "sup_street", device="tablet-0001")
    rid = wid()
    body = push(api, "worker1", changes(residents={"updated": [resident_raw(rid, dwelling, "101")]}), last)
    assert body == {"ok": True, "rejected": [], "applied": {"residents": 1}, "unchanged": 0}
    (resident,) = rows(engine, select(Resident).where(Resident.id == rid))
    assert resident[0].phone == "13800138000" and resident[0].area_path.startswith(c1["path"])
    assert resident[0].created_by == world.users["worker1"]
    # The registration service ran: a new-arrival task exists for the pushed record.
    assert rows(engine, select(Task.id).where(Task.resident_id == rid, Task.kind == "new_arrival_visit"))
    # Another device in scope gets it; the pushing device gets the server's version (community filled in).
    other = pull(api, "sup_street", other_last, device="tablet-0001")
    assert rid in ids(other, "residents")
    mine = pull(api, "worker1", last)
    raw = next(r for r in mine["changes"]["residents"]["updated"] if r["id"] == rid)
    assert raw["community_id"] == c1["id"] and raw["phone"] == "13800138000"
    assert mine["changes"]["residents"]["deleted"] == []
    device = rows(engine, select(SyncDevice).where(SyncDevice.device_id == "phone-0001"))[0][0]
    assert (device.pushes, device.rejected_total, device.last_rejected) == (1, 0, 0)
    assert device.last_push_at is not None
    audits = rows(engine, select(AuditEvent.detail).where(AuditEvent.action == "sync.push"))
    assert len(audits) == 1 and "手机" not in audits[0][0] and '"rejected": 0' in audits[0][0]


def test_retried_push_changes_nothing(api: Api, world: World, engine: Engine) -> None:
    dwelling = world.dwellings[world.community("c1")["id"]][0]
    last = cursor(api, "worker1")
    rid = wid()
    payload = changes(residents={"created": [resident_raw(rid, dwelling, "102")]})
    push(api, "worker1", payload, last)
    logged, version = _log_count(engine), rows(engine, select(Resident.version).where(Resident.id == rid))[0][0]
    again = push(api, "worker1", payload, last)  # the response was lost: same cursor, same records
    assert again["applied"] == {} and again["unchanged"] == 1 and again["rejected"] == []
    assert _log_count(engine) == logged
    assert rows(engine, select(Resident.version).where(Resident.id == rid))[0][0] == version
    assert len(rows(engine, select(Resident.id).where(Resident.id_number == payload["residents"]["created"][0][
        "id_number"]))) == 1


def test_create_of_existing_is_an_update_and_update_of_missing_is_a_create(api: Api, world: World,
                                                                          engine: Engine) -> None:
    dwelling = world.dwellings[world.community("c1")["id"]][0]
    last = cursor(api, "worker1")
    rid, other = wid(), wid()
    push(api, "worker1", changes(residents={"created": [resident_raw(rid, dwelling, "103")]}), last)
    renamed = resident_raw(rid, dwelling, "103", name="改名", occupation="厨师")
    body = push(api, "worker1", changes(residents={"created": [renamed]}), last)
    assert body["applied"] == {"residents": 1}
    (name, occupation, version), = rows(engine, select(Resident.name, Resident.occupation, Resident.version)
                                        .where(Resident.id == rid))
    assert (name, occupation, version) == ("改名", "厨师", 2)
    missing = {**resident_raw(other, dwelling, "104"), "_status": "updated", "_changed": "name"}
    body = push(api, "worker1", changes(residents={"updated": [missing]}), last)
    assert body["applied"] == {"residents": 1}
    assert rows(engine, select(Resident.id).where(Resident.id == other))


def test_out_of_scope_create_is_rejected_and_arrives_as_deleted(api: Api, world: World, engine: Engine) -> None:
    far_dwelling = world.dwellings[world.community("c3")["id"]][0]
    last = cursor(api, "worker1")
    rid = wid()
    body = push(api, "worker1", changes(residents={"created": [resident_raw(rid, far_dwelling, "105")]}), last)
    assert codes(body) == {rid: "not_found"} and body["applied"] == {}
    assert not rows(engine, select(Resident.id).where(Resident.id == rid))
    assert rows(engine, select(SyncRejection.kind, SyncRejection.code).where(SyncRejection.record_id == rid)) == [
        ("create", "not_found")]
    after = pull(api, "worker1", last)
    assert rid in ids(after, "residents", "deleted")
    # Once the device holds a later cursor, the rejection is reconciled and not sent again.
    later = pull(api, "worker1", after["timestamp"])
    assert rid not in ids(later, "residents", "deleted")
    assert rows(engine, select(SyncRejection.reconciled).where(SyncRejection.record_id == rid)) == [(True,)]
    device = rows(engine, select(SyncDevice).where(SyncDevice.device_id == "phone-0001"))[0][0]
    assert (device.rejected_total, device.last_rejected) == (1, 1)


def test_a_bad_record_rejects_only_itself(api: Api, world: World, engine: Engine) -> None:
    dwelling = world.dwellings[world.community("c1")["id"]][0]
    last = cursor(api, "worker1")
    good, bad, typed, rule = wid(), wid(), wid(), wid()
    body = push(api, "worker1", changes(residents={"created": [
        resident_raw(bad, dwelling, "106", id_number="110101199001011234X"),  # not an ID number
        resident_raw(good, dwelling, "107"),
        resident_raw(typed, dwelling, "108", arrival_date="2026-09-01"),  # a date must be epoch ms
        resident_raw(rule, dwelling, "109", phone="12345"),
    ]}), last)
    assert codes(body) == {bad: "record_invalid", typed: "record_invalid", rule: "phone_format"}
    assert body["applied"] == {"residents": 1}
    assert {r for (r,) in rows(engine, select(Resident.id).where(Resident.id.in_([good, bad, typed, rule])))} == {
        good}
    # Audit rows exist for the good record only.
    created = {t for (t,) in rows(engine, select(AuditEvent.target_id).where(AuditEvent.action == "residents.create"))}
    assert good in created and not {bad, typed, rule} & created


def test_registered_elsewhere_keeps_the_transfer_request(api: Api, world: World, engine: Engine) -> None:
    c3 = world.community("c3")
    far_dwelling = world.dwellings[c3["id"]][0]
    dwelling = world.dwellings[world.community("c1")["id"]][0]
    raw = resident_raw(wid(), far_dwelling, "110")
    response = api.as_("worker3", "POST", "/api/v1/residents", json={
        "name": raw["name"], "id_number": raw["id_number"], "hukou_code": "411702", "arrival_date": "2026-09-01",
        "dwelling_id": far_dwelling})
    assert response.status_code == 201, response.text
    last = cursor(api, "worker1")
    rid = wid()
    body = push(api, "worker1", changes(residents={"created": [{**raw, "id": rid, "dwelling_id": dwelling}]}), last)
    assert codes(body) == {rid: "resident_registered_elsewhere"}
    transfers = api.as_("sup_other", "GET", "/api/v1/transfers").json()["items"]
    assert any(t["resident_id"] == response.json()["id"] for t in transfers)
    assert not rows(engine, select(Resident.id).where(Resident.id == rid))


def test_forbidden_field_rejects_the_record(api: Api, world: World, engine: Engine) -> None:
    dwelling = world.dwellings[world.community("c1")["id"]][0]
    last = cursor(api, "worker1")
    rid = wid()
    push(api, "worker1", changes(residents={"created": [resident_raw(rid, dwelling, "111")]}), last)
    last = cursor(api, "worker1", last=last)
    edit = {**resident_raw(rid, dwelling, "111"), "_status": "updated", "_changed": "status,occupation,updated_at",
            "status": "LEFT", "occupation": "司机", "updated_at": 1_800_000_000_000}
    body = push(api, "worker1", changes(residents={"updated": [edit]}), last)
    assert codes(body) == {rid: "field_not_writable"}
    assert rows(engine, select(Resident.status, Resident.occupation).where(Resident.id == rid)) == [
        ("REGISTERED", None)]
    # The same columns with the stored values (only occupation really changed) are fine.
    ok = {**edit, "status": "REGISTERED"}
    assert push(api, "worker1", changes(residents={"updated": [ok]}), last)["applied"] == {"residents": 1}
    assert rows(engine, select(Resident.occupation).where(Resident.id == rid)) == [("司机",)]


def test_read_only_tables_and_deletes(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    dwelling = world.dwellings[c1["id"]][0]
    last = cursor(api, "worker1")
    rid = wid()
    push(api, "worker1", changes(residents={"created": [resident_raw(rid, dwelling, "112")]}), last)
    last = cursor(api, "worker1", last=last)
    body = push(api, "worker1", changes(
        divisions={"updated": [{"id": c1["id"], "name": "改名"}]},
        service_items={"deleted": ["a" * 32]},
        residents={"deleted": [rid, wid()]},  # an existing resident, and one the server never had
        dwellings={"deleted": [dwelling]},
    ), last)
    assert codes(body) == {c1["id"]: "read_only_table", "a" * 32: "read_only_table", rid: "delete_not_allowed",
                           dwelling: "delete_not_allowed"}
    assert body["unchanged"] == 1  # the delete of a missing record
    assert rows(engine, select(Resident.id).where(Resident.id == rid))
    assert rows(engine, select(Dwelling.active).where(Dwelling.id == dwelling)) == [(True,)]
    # The next pull sends the records back (the phone deleted them locally).
    after = pull(api, "worker1", last)
    assert rid in ids(after, "residents") and dwelling in ids(after, "dwellings")
    assert c1["id"] in ids(after, "divisions")


def test_dwellings_create_and_update(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    last = cursor(api, "worker1")
    did = wid()
    raw = {"id": did, "_status": "created", "_changed": "", "community_id": c1["id"], "grid_id": None,
           "address": "手机路1号", "kind": "rental", "lat": None, "lng": None, "active": True}
    assert push(api, "worker1", changes(dwellings={"created": [raw]}), last)["applied"] == {"dwellings": 1}
    last = cursor(api, "worker1", last=last)
    edit = {**raw, "_status": "updated", "_changed": "address,lat,lng", "address": "手机路2号", "lat": 31.2,
            "lng": 121.4}
    assert push(api, "worker1", changes(dwellings={"updated": [edit]}), last)["applied"] == {"dwellings": 1}
    assert rows(engine, select(Dwelling.address, Dwelling.lat, Dwelling.version).where(Dwelling.id == did)) == [
        ("手机路2号", 31.2, 2)]
    inactive = {**edit, "_changed": "active", "active": False}
    assert codes(push(api, "worker1", changes(dwellings={"updated": [inactive]}), last)) == {
        did: "field_not_writable"}
    far = {**raw, "id": wid(), "community_id": world.community("c3")["id"], "address": "越界路1号"}
    body = push(api, "worker1", changes(dwellings={"created": [far]}), last)
    assert codes(body) == {far["id"]: "not_found"}


def test_follow_up_tasks_create_cancel_and_delete(api: Api, world: World, engine: Engine) -> None:
    c1 = world.community("c1")
    resident = rows(engine, select(Resident.id).where(Resident.area_path.startswith(c1["path"]),
                                                      Resident.status == "REGISTERED"))[0][0]
    last = cursor(api, "worker1")
    today = city_today()

    def task(tid: str, **extra: Any) -> dict[str, Any]:
        return {"id": tid, "_status": "created", "_changed": "", "resident_id": resident, "kind": "follow_up",
                "due_date": date_to_ms(today), "reason": "document_check", "note": None, "state": "open", **extra}

    keep, gone, monthly = wid(), wid(), wid()
    body = push(api, "worker1", changes(tasks={"created": [task(keep), task(gone), task(monthly,
                                                                                      kind="key_person_monthly")]}),
                last)
    assert body["applied"] == {"tasks": 2} and codes(body) == {monthly: "task_kind_not_allowed"}
    assert rows(engine, select(Task.created_by, Task.state).where(Task.id == keep)) == [
        (world.users["worker1"], "open")]
    last = cursor(api, "worker1", last=last)
    edit = {**task(keep), "_status": "updated", "_changed": "state", "state": "cancelled",
            "cancel_reason": "duplicate_task"}
    body = push(api, "worker1", changes(tasks={"updated": [edit], "deleted": [gone]}), last)
    assert body["applied"] == {"tasks": 2}
    assert rows(engine, select(Task.state, Task.cancel_reason).where(Task.id.in_([keep, gone])).order_by(
        Task.cancel_reason)) == [("cancelled", "duplicate_task"), ("cancelled", "no_longer_needed")]
    # A local delete after the push is never undone by the next pull: cancelled tasks arrive as deleted.
    after = pull(api, "worker1", last)
    assert {keep, gone} <= ids(after, "tasks", "deleted") and not {keep, gone} & ids(after, "tasks")
    # A task the worker did not create cannot be deleted or changed.
    system = rows(engine, select(Task.id, Task.due_date).where(Task.resident_id == resident,
                                                               Task.created_by.is_(None), Task.state == "open"))
    if system:
        body = push(api, "worker1", changes(tasks={"deleted": [system[0][0]]}), after["timestamp"])
        assert codes(body) == {system[0][0]: "delete_not_allowed"}


def test_push_over_the_limits_is_refused_before_any_work(api: Api, world: World, engine: Engine,
                                                         monkeypatch: Any) -> None:
    """A push over the record limits is 413 push_too_large naming the limits: nothing is written, no device
    is registered, no rejection is stored, and the same body split in two is taken (docs/sync.md)."""
    from app.core.config import get_settings
    from tests.sync.push_helpers import push_raw, visit_raw

    monkeypatch.setattr(get_settings(), "sync_push_max_records", 100)
    dwelling = world.dwellings[world.community("c1")["id"]][0]
    resident = rows(engine, select(Resident.id).where(Resident.dwelling_id == dwelling))[0][0]
    last = cursor(api, "worker1", device="phone-0002")
    logged = _log_count(engine)
    visits = [visit_raw(wid(), resident) for _ in range(101)]
    refused = push_raw(api, "worker1", changes(visits={"updated": visits}), last, device="phone-0009")
    assert refused.status_code == 413 and refused.json()["code"] == "push_too_large"
    assert refused.json()["details"] == {"max_records": 100, "max_itemised": 10, "records": 101, "itemised": 0}
    # Registrations, tasks and deletions go through the full checks one by one: a tenth of the limit.
    residents = [resident_raw(wid(), dwelling, f"{200 + i}") for i in range(6)]
    itemised = push_raw(api, "worker1", changes(residents={"updated": residents},
                                                tasks={"deleted": [wid() for _ in range(5)]}), last,
                        device="phone-0009")
    assert itemised.status_code == 413 and itemised.json()["details"]["itemised"] == 11
    assert _log_count(engine) == logged
    assert rows(engine, select(SyncDevice.id).where(SyncDevice.device_id == "phone-0009")) == []
    assert rows(engine, select(func.count()).select_from(SyncRejection))[0][0] == 0
    # Split in table order, each part within the limits: every record is taken, once.
    first = push(api, "worker1", changes(visits={"updated": visits[:100]}), last, device="phone-0002")
    second = push(api, "worker1", changes(visits={"updated": visits[100:]}), last, device="phone-0002")
    assert first["applied"] == {"visits": 100} and second["applied"] == {"visits": 1}


def test_ids_taken_outside_scope_look_like_records_that_do_not_exist(api: Api, world: World, engine: Engine) -> None:
    """Ids held by another district's records: refused like a reference outside scope (never `visit_immutable`
    or `delivery_id_taken`), ignored when deleted like a missing record; the phone converges either way."""
    far_dwelling = world.dwellings[world.community("c3")["id"]][0]
    own_dwelling = world.dwellings[world.community("c1")["id"]][0]
    far_visit, far_delivery = wid(), wid()
    far_resident = api.as_("worker3", "POST", V1 + "/residents", json={
        "name": "远方", "id_number": resident_raw("x", far_dwelling, "120")["id_number"], "hukou_code": "411702",
        "arrival_date": "2026-09-01", "dwelling_id": far_dwelling}).json()["id"]
    visit = {**phone_visit_body(far_resident), "id": far_visit, "services": [
        {"item_code": "education", "quantity": 1, "id": far_delivery}]}
    assert api.as_("worker3", "POST", V1 + "/visits", json=visit).status_code == 201
    far_task = api.as_("worker3", "POST", V1 + "/tasks", json={
        "resident_id": far_resident, "reason": "other", "due_date": city_today().isoformat()}).json()["id"]
    last = cursor(api, "worker1")
    own = wid()
    push(api, "worker1", changes(residents={"created": [resident_raw(own, own_dwelling, "121")]}), last)
    last = cursor(api, "worker1", last=last)

    fresh_far, fresh, orphan, orphan_fresh = wid(), wid(), wid(), wid()
    body = push(api, "worker1", changes(
        visits={"created": [visit_raw(far_visit, own), visit_raw(fresh_far, far_resident), visit_raw(fresh, own)]},
        service_deliveries={"created": [delivery_raw(far_delivery, fresh)]},
        residents={"deleted": [far_resident, wid()]}, dwellings={"deleted": [far_dwelling]},
        tasks={"deleted": [far_task]}), last)
    refused = {r["id"]: (r["code"], r["message"]) for r in body["rejected"]}
    not_found = ("not_found", "Not found.")
    assert refused == {
        # another district's visit id = a fresh visit about a resident outside scope
        far_visit: not_found, fresh_far: not_found,
        # another district's delivery id refuses its visit (and the delivery) as not found
        fresh: not_found, far_delivery: not_found,
    }
    # Deletes of records outside scope are ignored, like the delete of a record that never existed.
    assert body["unchanged"] == 4 and body["applied"] == {}
    # Residents, dwellings and tasks created under another district's ids: refused as not found, like a
    # record that names a place outside scope.
    c1 = world.community("c1")
    taken = push(api, "worker1", changes(
        residents={"created": [resident_raw(far_resident, own_dwelling, "122")]},
        dwellings={"created": [{"id": far_dwelling, "_status": "created", "_changed": "", "community_id": c1["id"],
                                "grid_id": None, "address": "手机路9号", "kind": "rental", "lat": None, "lng": None}]},
        tasks={"created": [{"id": far_task, "_status": "created", "_changed": "", "resident_id": own,
                            "kind": "follow_up", "due_date": date_to_ms(city_today()), "reason": "other",
                            "note": None, "state": "open"}]}), last)
    assert {r["id"]: (r["code"], r["message"]) for r in taken["rejected"]} == {
        far_resident: not_found, far_dwelling: not_found, far_task: not_found}
    # A delivery for another district's visit = one for a visit that does not exist.
    alone = push(api, "worker1", changes(service_deliveries={"created": [
        delivery_raw(orphan, far_visit), delivery_raw(orphan_fresh, wid())]}), last)
    refused = {r["id"]: (r["code"], r["message"]) for r in alone["rejected"]}
    assert refused[orphan] == refused[orphan_fresh] and refused[orphan][0] == "visit_missing"
    assert rows(engine, select(Task.state).where(Task.id == far_task)) == [("open",)]
    assert rows(engine, select(Resident.status).where(Resident.id == far_resident)) == [("REGISTERED",)]
    # The phone drops what was refused and receives nothing of the other district.
    after = pull(api, "worker1", last)
    assert {far_visit, fresh_far, fresh} <= ids(after, "visits", "deleted")
    assert {far_delivery, orphan} <= ids(after, "service_deliveries", "deleted")
    sent = json.dumps({t: c["updated"] for t, c in after["changes"].items()})
    assert far_resident not in sent and far_task not in sent and far_dwelling not in sent
    assert far_resident in ids(after, "residents", "deleted") and far_task in ids(after, "tasks", "deleted")


def test_a_uuid_resident_is_refused_by_name_and_the_phone_converges(api: Api, world: World, engine: Engine) -> None:
    """Residents and dwellings take WatermelonDB's ids; a UUID-keyed one is refused naming its id (stored as a
    rejection), so the next pull deletes it from the phone. Visits take UUIDs. Ids that cannot come from an
    app (not a string, too long) are refused without a name."""
    import uuid

    from tests.sync.push_helpers import push_raw

    dwelling = world.dwellings[world.community("c1")["id"]][0]
    last = cursor(api, "worker1")
    resident_uuid, dwelling_uuid = str(uuid.uuid4()), str(uuid.uuid4())
    body = push(api, "worker1", changes(
        residents={"created": [resident_raw(resident_uuid, dwelling, "131"), {"id": 7, "name": "x"},
                               {**resident_raw("y" * 40, dwelling, "132")}]},
        dwellings={"created": [{"id": dwelling_uuid, "_status": "created", "_changed": "",
                                "community_id": world.community("c1")["id"], "grid_id": None,
                                "address": "新路1号", "kind": "rental", "lat": None, "lng": None}]}), last)
    assert sorted((r["table"], r["id"], r["code"]) for r in body["rejected"]) == sorted([
        ("residents", resident_uuid, "id_not_accepted"), ("dwellings", dwelling_uuid, "id_not_accepted"),
        ("residents", "", "record_invalid"), ("residents", "", "record_invalid")])
    assert rows(engine, select(SyncRejection.record_id).where(SyncRejection.code == "id_not_accepted"))
    after = pull(api, "worker1", last)
    assert resident_uuid in ids(after, "residents", "deleted") and dwelling_uuid in ids(after, "dwellings", "deleted")
    assert rows(engine, select(Resident.id).where(Resident.id == resident_uuid)) == []
    # The same push again (the phone did not converge yet) is refused the same way, and nothing is stored.
    raw = push_raw(api, "worker1", changes(residents={"created": [resident_raw(resident_uuid, dwelling, "131")]}),
                   after["timestamp"])
    assert [(r["id"], r["code"]) for r in raw.json()["rejected"]] == [(resident_uuid, "id_not_accepted")]


def test_a_resident_and_their_first_visit_pushed_together_complete_the_arrival_task(
        api: Api, world: World, engine: Engine) -> None:
    # Registering the resident makes the new-arrival task in this push's transaction; the visit after it completes
    # that task as plain rows, with the audit event and the change-log row the ORM would have made.
    dwelling = world.dwellings[world.community("c1")["id"]][0]
    last = cursor(api, "worker1")
    other_last = cursor(api, "worker1", device="phone-0002")
    rid, vid = wid(), wid()
    body = push(api, "worker1", changes(residents={"updated": [resident_raw(rid, dwelling, "103")]},
                                        visits={"updated": [visit_raw(vid, rid, mode="in_person",
                                                                         no_coordinates_reason="indoors_no_signal")]}),
                last)
    assert body["rejected"] == [] and body["applied"] == {"residents": 1, "visits": 1}
    ((task_id, state, done_by, version),) = rows(engine, select(Task.id, Task.state, Task.completed_by_visit_id,
                                                                Task.version).where(Task.resident_id == rid))
    assert (state, done_by, version) == ("done", vid, 2)
    audited = rows(engine, select(AuditEvent.action, AuditEvent.fields).where(AuditEvent.target_id == task_id)
                   .order_by(AuditEvent.id))
    assert [a for a, _ in audited] == ["tasks.create", "tasks.update"]
    assert audited[1][1] == "completed_at,completed_by_visit_id,state,updated_at,version"
    logged = rows(engine, select(SyncLog.fields).where(SyncLog.record_id == task_id))
    assert "completed_by_visit_id,state" in ",".join(f or "" for (f,) in logged)
    # The worker's other phone is told: a done task leaves the phones (docs/sync.md), the resident arrives.
    other = pull(api, "worker1", other_last, device="phone-0002")
    assert task_id in ids(other, "tasks", "deleted") and task_id not in ids(other, "tasks")
    assert rid in ids(other, "residents")


def test_a_resident_registered_offline_days_ago_owes_the_arrival_visit_from_that_day(
        api: Api, world: World, engine: Engine) -> None:
    # A phone registered the resident three days ago, visited them the next day and syncs only now: the new-arrival
    # visit is owed from the phone's day of registration, so that visit completes it (with the server's date, a
    # visit synced after midnight, or days later, would leave it open for ever).
    dwelling = world.dwellings[world.community("c1")["id"]][0]
    last = cursor(api, "worker1")
    now = datetime.now(UTC)
    registered, visited = now - timedelta(days=3), now - timedelta(days=2)
    rid, vid = wid(), wid()
    body = push(api, "worker1", changes(
        residents={"updated": [resident_raw(rid, dwelling, "141", created_at=to_ms(registered))]},
        visits={"updated": [visit_raw(vid, rid, mode="in_person", no_coordinates_reason="indoors_no_signal",
                                      started_at=to_ms(visited), ended_at=to_ms(visited + timedelta(minutes=5)))]}),
        last)
    assert body["rejected"] == []
    ((period, due, state, done_by),) = rows(engine, select(Task.period, Task.due_date, Task.state,
                                                           Task.completed_by_visit_id).where(Task.resident_id == rid))
    day = city_date(registered)
    assert (period, state, done_by) == (day.isoformat(), "done", vid)
    assert due == day + timedelta(days=get_settings().new_arrival_visit_days)


def test_a_phones_registration_date_is_trusted_only_as_far_back_as_its_visits(
        api: Api, world: World, engine: Engine) -> None:
    # A phone's clock decides a visit's time only within VISIT_MAX_AGE_DAYS; its registration date likewise. A date
    # in the future, or no usable one, is today.
    dwelling = world.dwellings[world.community("c1")["id"]][0]
    last = cursor(api, "worker1")
    now = datetime.now(UTC)
    long_ago, ahead, garbled = wid(), wid(), wid()
    body = push(api, "worker1", changes(residents={"updated": [
        resident_raw(long_ago, dwelling, "142", created_at=to_ms(now - timedelta(days=400))),
        resident_raw(ahead, dwelling, "143", created_at=to_ms(now + timedelta(days=3))),
        resident_raw(garbled, dwelling, "144", created_at="yesterday")]}), last)
    assert body["rejected"] == [] and body["applied"] == {"residents": 3}
    periods = dict(rows(engine, select(Task.resident_id, Task.period).where(
        col(Task.resident_id).in_([long_ago, ahead, garbled]))))
    today = city_today()
    assert periods == {long_ago: (today - timedelta(days=get_settings().visit_max_age_days)).isoformat(),
                       ahead: today.isoformat(), garbled: today.isoformat()}
