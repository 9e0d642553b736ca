"""Assistance requests follow the register: a resident who moves takes live requests to the new community's
worker, a merged record's requests go to the survivor, a resident who left cannot be asked about; and the
partner city's shape is an allow-list."""

from __future__ import annotations

from sqlalchemy import Engine

from app.core.db import unit_of_work
from app.core.types import city_today
from app.cycle.assistance import service
from app.cycle.assistance.models import AssistanceRequest
from tests.conftest import Api, World
from tests.cycle.assist_helpers import URL, act, draft, incoming, woman
from tests.people.wf_helpers import merge, pair


def test_live_requests_follow_a_move(api: Api, world: World) -> None:
    resident = woman(api, world, "140")
    live = draft(api, resident["id"], topic="residence")
    done = incoming(api, resident["id_number"], "ZK-MV-1", city_today(), topic="residence")
    done = act(api, "worker1", done, "answer", {"finding": "confirmed"})
    c2 = world.community("c2")
    moved = api.as_("sup_street", "POST", f"/api/v1/residents/{resident['id']}/move", json={
        "version": resident["version"], "dwelling_id": world.dwellings[c2["id"]][0],
        "moved_on": city_today().isoformat()})
    assert moved.status_code == 200, moved.text
    followed = api.as_("worker2", "GET", f"{URL}/{live['id']}").json()
    assert (followed["community_id"], followed["version"]) == (c2["id"], 2)
    assert api.as_("worker1", "GET", f"{URL}/{live['id']}").status_code == 404
    # The answered request stays with the community that answered it.
    assert api.as_("worker1", "GET", f"{URL}/{done['id']}").json()["community_id"] == world.community("c1")["id"]
    assert act(api, "worker2", followed, "send")["state"] == "sent"


def test_a_merged_records_requests_go_to_the_survivor(api: Api, world: World) -> None:
    keep, gone = pair(api, world)
    kept_live = draft(api, keep["id"], topic="residence")
    clash = draft(api, gone["id"], topic="residence")  # the survivor has one live on this topic already
    moves = draft(api, gone["id"], topic="fp_certificate")
    merged = merge(api, keep, gone)
    assert merged.status_code == 200, merged.text
    after = {r: api.as_("admin", "GET", f"{URL}/{r}").json() for r in (kept_live["id"], clash["id"], moves["id"])}
    assert {r: (a["resident_id"], a["version"]) for r, a in after.items()} == {
        kept_live["id"]: (keep["id"], 1), clash["id"]: (gone["id"], 1), moves["id"]: (keep["id"], 2)}
    # The record that stands for no one any more cannot be asked about.
    refused = act(api, "worker1", clash, "send", status=409)
    assert refused["code"] == "resident_not_registered"


def test_partner_shape_is_an_allow_list(api: Api, world: World, engine: Engine) -> None:
    resident = woman(api, world, "142")
    request = draft(api, resident["id"], topic="fp_certificate", urgent=True)
    with unit_of_work(write=False, engine=engine) as session:
        row = session.get(AssistanceRequest, request["id"])
        assert row is not None
        shape = service.partner_out(session, row, city_today()).model_dump()
    assert list(shape) == ["id", "direction", "state", "topic", "urgent", "partner_reference", "subject_name",
                           "subject_id_number", "sent_on", "due_on", "answered_on", "finding",
                           "fp_certificate_status", "version"]  # the version: a partner city's steps send it back
    assert (shape["subject_id_number"], shape["urgent"], shape["state"]) == (resident["id_number"], True, "draft")
