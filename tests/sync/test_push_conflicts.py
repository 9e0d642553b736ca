"""Push: conflicts merged field by field and listed for supervisors, visits with their deliveries, request
errors (device, cursor, body, encoding) and revoked devices."""

from __future__ import annotations

import gzip
import json

from sqlalchemy import Engine, select

from app.people.models import Resident
from app.sync.models import SyncConflict
from app.visits.models import ServiceDelivery, Visit
from tests.conftest import Api, World
from tests.sync.helpers import V1, rows
from tests.sync.push_helpers import (
    PUSH,
    changes,
    codes,
    cursor,
    delivery_raw,
    push,
    push_raw,
    resident_raw,
    visit_raw,
    wid,
)


def _own_resident(api: Api, world: World) -> tuple[str, int]:
    dwelling = world.dwellings[world.community("c1")["id"]][0]
    last = cursor(api, "worker1")
    rid = wid()
    push(api, "worker1", changes(residents={"created": [resident_raw(rid, dwelling, "201")]}), last)
    return rid, cursor(api, "worker1", last=last)


def test_conflict_is_merged_recorded_and_resolved(api: Api, world: World, engine: Engine) -> None:
    rid, last = _own_resident(api, world)
    dwelling = world.dwellings[world.community("c1")["id"]][0]
    # The supervisor edits two fields on the server after the phone's pull.
    patched = api.as_("sup_street", "PATCH", f"{V1}/residents/{rid}",
                      json={"version": 1, "occupation": "服务员", "employer": "饭店"})
    assert patched.status_code == 200, patched.text
    # Offline, the phone changed the occupation only (its stale employer value is not in _changed).
    edit = {**resident_raw(rid, dwelling, "201"), "_status": "updated", "_changed": "occupation",
            "occupation": "厨师", "employer": None}
    body = push(api, "worker1", changes(residents={"updated": [edit]}), last)
    assert body["applied"] == {"residents": 1} and body["rejected"] == []
    assert rows(engine, select(Resident.occupation, Resident.employer).where(Resident.id == rid)) == [("厨师", "饭店")]
    (conflict,), = rows(engine, select(SyncConflict).where(SyncConflict.record_id == rid))
    assert json.loads(conflict.fields) == ["occupation"]
    assert json.loads(conflict.server_values) == {"occupation": "服务员"}
    assert json.loads(conflict.client_values) == {"occupation": "厨师"}
    # Retrying the same push records nothing more.
    assert push(api, "worker1", changes(residents={"updated": [edit]}), last)["unchanged"] == 1
    assert len(rows(engine, select(SyncConflict.id).where(SyncConflict.record_id == rid))) == 1
    # Supervisors of the area see it; workers may not; another district's supervisor does not see it.
    listed = api.as_("sup_street", "GET", V1 + "/sync/conflicts")
    assert listed.status_code == 200, listed.text
    item = next(i for i in listed.json()["items"] if i["record_id"] == rid)
    assert item["server_values"] == {"occupation": "服务员"} and item["username"] == "worker1"
    assert api.as_("worker1", "GET", V1 + "/sync/conflicts").status_code == 403
    assert not [i for i in api.as_("sup_other", "GET", V1 + "/sync/conflicts").json()["items"]
                if i["record_id"] == rid]
    url = f"{V1}/sync/conflicts/{item['id']}/resolve"
    assert api.as_("sup_other", "POST", url, json={}).status_code == 404
    assert api.as_("worker1", "POST", url, json={}).status_code == 403
    assert api.as_("admin", "POST", url, json={}).status_code == 403
    done = api.as_("sup_street", "POST", url, json={"outcome": "acknowledged"})
    assert done.status_code == 200 and done.json()["resolved_at"] is not None
    again = api.as_("sup_street", "POST", url, json={})
    assert again.status_code == 409 and again.json()["code"] == "conflict_already_resolved"
    assert not [i for i in api.as_("sup_street", "GET", V1 + "/sync/conflicts").json()["items"]
                if i["record_id"] == rid]
    resolved = api.as_("sup_street", "GET", V1 + "/sync/conflicts", params={"resolved": "true"}).json()["items"]
    assert [i["id"] for i in resolved if i["record_id"] == rid] == [item["id"]]


def test_no_conflict_when_the_server_changed_other_fields(api: Api, world: World, engine: Engine) -> None:
    rid, last = _own_resident(api, world)
    dwelling = world.dwellings[world.community("c1")["id"]][0]
    assert api.as_("sup_street", "PATCH", f"{V1}/residents/{rid}", json={"version": 1, "employer": "工厂"}
                   ).status_code == 200
    edit = {**resident_raw(rid, dwelling, "201"), "_status": "updated", "_changed": "occupation", "occupation": "工人"}
    push(api, "worker1", changes(residents={"updated": [edit]}), last)
    assert rows(engine, select(Resident.occupation, Resident.employer).where(Resident.id == rid)) == [("工人", "工厂")]
    assert not rows(engine, select(SyncConflict.id).where(SyncConflict.record_id == rid))


def test_visits_with_deliveries(api: Api, world: World, engine: Engine) -> None:
    rid, last = _own_resident(api, world)
    vid, d1, d2, orphan = wid(), wid(), wid(), wid()
    payload = changes(visits={"created": [visit_raw(vid, rid)]}, service_deliveries={"created": [
        delivery_raw(d1, vid), delivery_raw(d2, vid, "contraceptives", 2), delivery_raw(orphan, wid())]})
    body = push(api, "worker1", payload, last)
    assert body["applied"] == {"visits": 1, "service_deliveries": 2}
    assert codes(body) == {orphan: "visit_missing"}
    assert rows(engine, select(Visit.worker_id).where(Visit.id == vid)) == [(world.users["worker1"],)]
    assert {r for (r,) in rows(engine, select(ServiceDelivery.id).where(ServiceDelivery.visit_id == vid))} == {d1, d2}
    # A retry of the same visit and deliveries changes nothing.
    again = push(api, "worker1", payload, last)
    assert again["unchanged"] == 3 and codes(again) == {orphan: "visit_missing"}
    # A changed visit, or a new delivery for a stored visit, is refused.
    original = payload["visits"]["created"][0]
    changed = {**original, "_status": "updated", "_changed": "started_at",
               "started_at": original["started_at"] - 60_000}
    extra = delivery_raw(wid(), vid, "condoms")
    replay = delivery_raw(d1, vid)
    body = push(api, "worker1", changes(visits={"updated": [changed]}), last)
    assert codes(body) == {vid: "visit_immutable"}
    body = push(api, "worker1", changes(service_deliveries={"updated": [extra, replay]}), last)
    assert codes(body) == {extra["id"]: "visit_immutable"} and body["unchanged"] == 1
    # A visit the REST path refuses is refused with the same code, with its deliveries.
    far = rows(engine, select(Resident.id).where(Resident.area_path.startswith(world.community("c3")["path"])))[0][0]
    bad, bad_delivery = wid(), wid()
    body = push(api, "worker1", changes(visits={"created": [visit_raw(bad, far)]}, service_deliveries={
        "created": [delivery_raw(bad_delivery, bad)]}), last)
    assert codes(body) == {bad: "not_found", bad_delivery: "not_found"}
    assert not rows(engine, select(Visit.id).where(Visit.id == bad))


def test_request_errors(api: Api, world: World) -> None:
    last = cursor(api, "worker1")
    empty = changes(residents={})

    def code(response: object) -> tuple[int, str]:
        return response.status_code, response.json()["code"]  # type: ignore[attr-defined]

    assert code(push_raw(api, "worker1", empty, last, device="x")) == (422, "device_id_required")
    assert code(push_raw(api, "worker1", empty, None)) == (422, "cursor_invalid")
    assert code(push_raw(api, "worker1", empty, "abc")) == (422, "cursor_invalid")
    assert code(push_raw(api, "worker1", empty, last + 1000)) == (422, "cursor_ahead")
    assert code(push_raw(api, "worker1", {"photos": {"created": []}}, last)) == (422, "sync_table_unknown")
    assert code(push_raw(api, "worker1", {"residents": {"created": {}}}, last)) == (422, "push_invalid")
    assert code(push_raw(api, "worker1", [1, 2], last, wrap=False)) == (422, "push_invalid")
    headers = {"X-Device-Id": "phone-0001", "Content-Type": "application/json"}
    assert code(api.as_("worker1", "POST", PUSH, params={"last_pulled_at": last}, content=b"{not json",
                        headers=headers)) == (422, "push_invalid")
    assert code(api.as_("worker1", "POST", PUSH, params={"last_pulled_at": last}, content=b"{}",
                        headers={**headers, "Content-Encoding": "br"})) == (415, "content_encoding_unsupported")
    assert code(api.as_("worker1", "POST", PUSH, params={"last_pulled_at": last}, content=b"not gzip",
                        headers={**headers, "Content-Encoding": "gzip"})) == (422, "push_invalid")
    bomb = gzip.compress(b"[" + b" " * (17 * 1024 * 1024) + b"]")
    assert code(api.as_("worker1", "POST", PUSH, params={"last_pulled_at": last}, content=bomb,
                        headers={**headers, "Content-Encoding": "gzip"})) == (413, "body_too_large")
    assert code(api.as_("admin", "POST", PUSH, params={"last_pulled_at": last}, content=b"{}",
                        headers=headers)) == (403, "forbidden")
    # The unwrapped changes object, gzip-compressed, is accepted.
    ok = api.as_("worker1", "POST", PUSH, params={"last_pulled_at": last},
                 content=gzip.compress(json.dumps(empty).encode()), headers={**headers, "Content-Encoding": "gzip"})
    assert ok.status_code == 200 and ok.json() == {"ok": True, "rejected": [], "applied": {}, "unchanged": 0}


def test_revoked_device_cannot_push(api: Api, world: World, engine: Engine) -> None:
    rid, last = _own_resident(api, world)
    device = next(d for d in api.as_("worker1", "GET", V1 + "/sync/devices").json()["items"]
                  if d["device_id"] == "phone-0001")
    assert api.as_("sup_street", "POST", f"{V1}/sync/devices/{device['id']}/revoke").status_code == 200
    dwelling = world.dwellings[world.community("c1")["id"]][0]
    edit = {**resident_raw(rid, dwelling, "201"), "_status": "updated", "_changed": "occupation", "occupation": "x"}
    response = push_raw(api, "worker1", changes(residents={"updated": [edit]}), last)
    assert response.status_code == 403 and response.json()["code"] == "device_revoked"
    assert rows(engine, select(Resident.occupation).where(Resident.id == rid)) == [(None,)]


def test_an_edit_made_after_the_pull_that_handed_out_the_change_is_no_conflict(api: Api, world: World,
                                                                             engine: Engine) -> None:
    """A phone pulls another user's edit, then edits the same field and syncs a minute later (its first pull
    there hands out nothing, or is quiet): it overwrote a value it had seen, so no conflict is recorded. The
    same edit made offline *before* the pull that handed out the change is a conflict."""
    from tests.sync.helpers import pull

    rid, last = _own_resident(api, world)
    dwelling = world.dwellings[world.community("c1")["id"]][0]
    assert api.as_("sup_street", "PATCH", f"{V1}/residents/{rid}", json={"version": 1, "occupation": "服务员"}
                   ).status_code == 200
    handed = pull(api, "worker1", last)  # synchronize(): the pull hands the edit out; nothing to push
    assert any(r["id"] == rid for r in handed["changes"]["residents"]["updated"])
    seen = handed["timestamp"]
    # A minute later the worker edits the occupation and syncs: pull (nothing new), then push.
    again = pull(api, "worker1", seen)
    assert again["changes"]["residents"]["updated"] == []
    quiet = pull(api, "worker1", again["timestamp"])  # and once more: a quiet pull, which writes nothing
    assert quiet["timestamp"] == again["timestamp"]
    edit = {**resident_raw(rid, dwelling, "201"), "_status": "updated", "_changed": "occupation", "occupation": "厨师"}
    body = push(api, "worker1", changes(residents={"updated": [edit]}), quiet["timestamp"])
    assert body["applied"] == {"residents": 1}
    assert rows(engine, select(SyncConflict.id).where(SyncConflict.record_id == rid)) == []
    # The same phone, offline: it edits first, then a server edit arrives, then it syncs (pull, then push).
    assert api.as_("sup_street", "PATCH", f"{V1}/residents/{rid}", json={"version": 3, "occupation": "保安"}
                   ).status_code == 200
    offline = {**edit, "occupation": "司机"}
    synced = pull(api, "worker1", quiet["timestamp"])
    body = push(api, "worker1", changes(residents={"updated": [offline]}), synced["timestamp"])
    assert body["applied"] == {"residents": 1}
    (conflict,), = rows(engine, select(SyncConflict).where(SyncConflict.record_id == rid))
    assert json.loads(conflict.server_values) == {"occupation": "保安"}
