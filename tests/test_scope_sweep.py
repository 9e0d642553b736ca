"""A worker's token cannot read or change anything outside their communities, on any route that exists.

Records are made in another district (community c3), then worker1 (community c1) calls every route of
the app against them with a body that passes validation, so only the scope check can stop it. The route
table below must name every route: a new route without an entry fails `test_every_route_is_swept`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from app.core.routes import api_routes
from app.main import app
from tests.conftest import PASSWORD, Api, World
from tests.factories import phone_visit_body, valid_id
from tests.sharing.police_helpers import police_headers, police_row

V1 = "/api/v1"
# A valid 1×1 PNG (the photo upload decodes the whole image).
PNG_1X1 = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c63f8cfc0f01f00050001ff89993d1d0000000049454e44ae426082")


@pytest.fixture()
def far(api: Api, world: World, engine: Engine) -> dict[str, Any]:
    """Records in community c3 (another district), made by the people who may make them."""
    c3 = world.community("c3")
    dwelling = world.dwellings[c3["id"]][0]
    other_dwelling = world.dwellings[c3["id"]][1]

    def post(user: str, url: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
        response = api.as_(user, "POST", V1 + url, json=body)
        assert response.status_code == status, (url, response.text)
        return dict(response.json())

    person = {"name": "远方", "hukou_code": "411702", "arrival_date": "2026-09-01", "phone": "13900001111"}
    resident = post("worker3", "/residents", {**person, "id_number": valid_id("41170219950101002"),
                                              "dwelling_id": dwelling})
    twin = post("worker3", "/residents", {**person, "id_number": valid_id("41170219950101004"),
                                          "dwelling_id": other_dwelling})
    landlord = post("worker3", "/landlords", {"name": "房东", "id_number": valid_id("41010519700101001"),
                                               "dwelling_id": dwelling})
    fp_doc = post("worker3", f"/residents/{resident['id']}/fp-documents", {"status": "valid"})
    correction = post("worker3", f"/residents/{resident['id']}/corrections", {"changes": {"occupation": "厨师"}})
    # The same person reported in the neighbour community c2: a transfer request between two communities
    # that are both outside worker1's area.
    c2 = world.community("c2")
    conflict = api.as_("worker2", "POST", V1 + "/residents", json={
        **person, "id_number": resident["id_number"], "dwelling_id": world.dwellings[c2["id"]][0]})
    assert conflict.status_code == 409, conflict.text
    flags = api.as_("sup_other", "GET", V1 + "/duplicates").json()["items"]
    visit = post("worker3", "/visits", phone_visit_body(resident["id"]))
    photo = api.as_("worker3", "POST", f"{V1}/visits/{visit['id']}/photos", data={"kind": "dwelling"},
                    files={"file": ("far.png", PNG_1X1, "image/png")})
    assert photo.status_code == 201, photo.text
    catalog_item = api.as_("admin", "GET", V1 + "/catalog").json()["items"][0]
    task = api.as_("worker3", "GET", V1 + "/tasks", params={"resident_id": resident["id"],
                                                            "kind": "new_arrival_visit"}).json()["items"][0]
    synced = api.as_("worker3", "GET", V1 + "/sync/pull", params={"schema_version": 1},
                     headers={"X-Device-Id": "far-phone-0001"})
    assert synced.status_code == 200, synced.text
    device = api.as_("worker3", "GET", V1 + "/sync/devices").json()["items"][0]
    # A sync conflict on the twin: the supervisor and worker3's phone both changed its occupation.
    assert api.as_("sup_other", "PATCH", f"{V1}/residents/{twin['id']}", json={"version": 1, "occupation": "a"}
                   ).status_code == 200
    pushed = api.as_("worker3", "POST", V1 + "/sync/push", params={"last_pulled_at": synced.json()["timestamp"]},
                     headers={"X-Device-Id": "far-phone-0001"}, json={"changes": {"residents": {"updated": [
                         {"id": twin["id"], "_status": "updated", "_changed": "occupation", "occupation": "b"}]}}})
    assert pushed.status_code == 200 and pushed.json()["applied"] == {"residents": 1}, pushed.text
    conflict_id = api.as_("sup_other", "GET", V1 + "/sync/conflicts").json()["items"][0]["id"]
    checkpoint = api.as_("auditor", "POST", V1 + "/audit/checkpoints").json()
    assistance = post("worker3", "/assistance-requests", {"resident_id": resident["id"], "topic": "residence"})
    assert api.as_("admin", "POST", V1 + "/cycle/open", json={}).status_code == 200
    [verification] = api.as_("worker3", "GET", V1 + "/cycle/verifications",
                             params={"resident_id": resident["id"]}).json()["items"]
    partner = _far_landlord(api, c3["id"], post)
    station = police_headers(api, engine, c3["path"])
    return {
        **partner,
        "row_id": police_row(api, station, engine, c3, dwelling),
        "verification_id": verification["id"], "period_id": verification["period_id"],
        "request_id": assistance["id"],
        "checkpoint_id": checkpoint["checkpoint_id"],
        "device_row_id": device["id"], "conflict_id": conflict_id,
        "resident_id": resident["id"], "resident_id_number": resident["id_number"], "keep_id": resident["id"],
        "twin_id": twin["id"],
        "dwelling_id": dwelling, "division_id": c3["id"], "landlord_id": landlord["id"],
        # The monthly report of c3 (GET /cycle/reports/{community_id}/{month}[.xlsx|.csv]): 404 for worker1.
        # Its roll-up route (GET /cycle/reports/rollup/{division_id}/{month}[.xlsx|.csv]) gets c3 itself: out of
        # scope is 404 before a community is refused as the wrong level (422), so worker1 learns nothing.
        "community_id": c3["id"], "month": (datetime.now(UTC) + timedelta(hours=8)).strftime("%Y-%m"),
        "document_id": fp_doc["id"], "correction_id": correction["id"],
        "transfer_id": conflict.json()["details"]["transfer_request_id"],
        "flag_id": next(f["id"] for f in flags if {f["resident_a"], f["resident_b"]} == {resident["id"], twin["id"]}),
        "user_id": world.users["worker3"],
        "secret_id": "0" * 32, "kind": "police",  # partner administration: admins only (tests/sharing)
        "visit_id": visit["id"],
        "photo_id": photo.json()["id"],
        "item_id": catalog_item["id"],
        "task_id": task["id"],
        # Webhook administration is admin-only (tests/sharing/webhooks): a worker is refused before any look-up.
        "webhook_id": "0" * 32, "event_id": "0" * 32,
    }


def _far_landlord(api: Api, community_id: str, post: Any) -> dict[str, Any]:
    """A landlord of c3 who registered themselves (confirmed by worker3), a dwelling of theirs still pending, and a
    move-in waiting for worker3."""
    phone = "13900003333"
    registered = api.client.post(V1 + "/partner/landlord/register", json={
        "name": "远房东", "id_number": valid_id("41010519700101088"), "phone": phone, "password": PASSWORD,
        "community_id": community_id, "address": "远方路1号"})
    assert registered.status_code == 202, registered.text
    [account] = api.as_("worker3", "GET", V1 + "/landlord-accounts").json()["items"]
    post("worker3", f"/landlord-accounts/{account['user_id']}/confirm", {"version": 1}, 200)
    [claim] = api.as_("worker3", "GET", V1 + "/landlord-dwelling-claims").json()["items"]
    dwelling = post("worker3", f"/landlord-dwelling-claims/{claim['id']}/confirm", {"version": 1}, 200)["dwelling_id"]
    pending = post(phone, "/partner/landlord/dwelling-registrations", {"community_id": community_id,
                                                                      "address": "远方路2号"})
    report = post(phone, "/partner/landlord/move-ins", {"dwelling_id": dwelling, "name": "远租客",
                                                        "id_number": valid_id("41160219950505004"),
                                                        "moved_in_on": "2026-11-23"})
    return {"account_id": account["user_id"], "claim_id": pending["id"], "report_id": report["id"]}


def bodies(far: dict[str, Any], world: World) -> dict[tuple[str, str], dict[str, Any] | None]:
    """A body that passes validation for every write route (None: no body)."""
    c1 = world.community("c1")
    own_dwelling = world.dwellings[c1["id"]][0]
    return {
        ("POST", "/users"): {"username": "sweeper", "display_name": "x", "role": "worker",
                             "password": "Sweep-Test-2026!", "division_ids": [far["division_id"]]},
        ("PATCH", "/users/{user_id}"): {"version": 1, "active": False},
        ("POST", "/users/{user_id}/reset-password"): {"temporary_password": "Sweep-Test-2026!"},
        ("POST", "/divisions"): {"code": "G99", "name": "x", "level": "grid", "parent_id": far["division_id"],
                                 "vintage": 2024},
        ("PATCH", "/divisions/{division_id}"): {"version": 1, "name": "x"},
        ("POST", "/divisions/{division_id}/move"): {"parent_id": world.streets[0]["id"]},
        ("POST", "/dwellings"): {"community_id": far["division_id"], "address": "新地址1号", "kind": "rental"},
        ("PATCH", "/dwellings/{dwelling_id}"): {"version": 1, "kind": "own"},
        ("POST", "/dwellings/{dwelling_id}/move"): {"community_id": c1["id"]},
        ("PUT", "/dwellings/{dwelling_id}/landlord"): {"version": 1, "landlord_id": None},
        ("POST", "/residents"): {"name": "越界", "id_number": valid_id("41160219900101003"), "hukou_code": "411602",
                                 "arrival_date": "2026-09-01", "dwelling_id": far["dwelling_id"]},
        ("PATCH", "/residents/{resident_id}"): {"version": 1, "occupation": "x"},
        ("POST", "/residents/{resident_id}/move"): {"version": 1, "dwelling_id": own_dwelling,
                                                    "moved_on": "2026-10-01"},
        ("POST", "/residents/{resident_id}/leave"): {"version": 1, "left_on": "2026-10-01", "reason": "left_city"},
        ("POST", "/landlords"): {"name": "房东二", "id_number": valid_id("41010519700101002"),
                                 "dwelling_id": far["dwelling_id"]},
        ("PATCH", "/landlords/{landlord_id}"): {"version": 1, "name": "x"},
        ("POST", "/residents/{resident_id}/fp-documents"): {"status": "valid"},
        ("PATCH", "/fp-documents/{document_id}"): {"version": 1, "status": "expired"},
        ("PUT", "/residents/{resident_id}/health"): {"version": 0, "pregnancy": "not_pregnant"},
        ("POST", "/transfers/{transfer_id}/accept"): None,
        ("POST", "/transfers/{transfer_id}/reject"): {"reason": "x"},
        ("POST", "/transfers/{transfer_id}/cancel"): {},
        ("POST", "/duplicates/{flag_id}/dismiss"): {"reason": "different_people"},
        ("POST", "/residents/{keep_id}/merge"): {"merged_id": far["twin_id"], "reason": "duplicate_registration",
                                                 "version_keep": 1, "version_merged": 1},
        ("POST", "/residents/{resident_id}/corrections"): {"changes": {"occupation": "x"}},
        ("POST", "/corrections/{correction_id}/decide"): {"accept": True, "reason": "x"},
        ("POST", "/tasks"): {"resident_id": far["resident_id"], "reason": "other",
                             "due_date": (datetime.now(UTC) + timedelta(hours=8)).date().isoformat()},
        ("POST", "/tasks/generate"): {"month": (datetime.now(UTC) + timedelta(hours=8)).strftime("%Y-%m")},
        ("POST", "/tasks/{task_id}/cancel"): {"reason": "other", "version": 1},
        ("POST", "/visits"): phone_visit_body(far["resident_id"]),
        ("POST", "/catalog/items"): {"code": "sweep_item", "name_zh": "x", "name_en": "x",
                                     "effective_from": "2026-01-01", "note": "x"},
        ("PATCH", "/catalog/items/{item_id}"): {"version": 1, "note": "x", "unit": "x"},
        ("POST", "/catalog/items/{item_id}/retire"): {"version": 1, "note": "x", "effective_to": "2026-12-31"},
        ("POST", "/visits/{visit_id}/review"): {"decision": "approve", "version": 1},
        ("POST", "/visits/{visit_id}/corrections"): {**phone_visit_body(), "correction_reason": "wrong_time"},
        ("POST", "/sync/devices/{device_row_id}/revoke"): None,
        ("POST", "/sync/conflicts/{conflict_id}/resolve"): {"outcome": "acknowledged"},
        ("POST", "/audit/checkpoints"): None,
        ("POST", "/audit/quality/visits/{visit_id}/decision"): {"decision": "accept", "version": 1},
        ("POST", "/assistance-requests"): {"resident_id": far["resident_id"], "topic": "fp_certificate"},
        ("POST", "/assistance-requests/incoming"): {  # admin only: a worker is refused
            "partner_city": "411700", "partner_reference": "ZMD-1", "id_number": far["resident_id_number"],
            "name": "远方", "topic": "residence", "received_on": (datetime.now(UTC) + timedelta(hours=8)).date()
            .isoformat()},
        ("POST", "/assistance-requests/{request_id}/send"): {"version": 1},
        ("POST", "/assistance-requests/{request_id}/progress"): {"state": "matched", "version": 1},
        ("POST", "/assistance-requests/{request_id}/answer"): {"finding": "confirmed", "version": 1},
        ("POST", "/sharing/police-reports/{row_id}/accept"): {"version": 1},
        ("POST", "/sharing/police-reports/{row_id}/dismiss"): {"version": 1, "reason": "other"},
        ("POST", "/cycle/open"): {},  # admin only: a worker is refused
        ("POST", "/cycle/periods/{period_id}/close"): {"version": 1},
        ("PUT", "/cycle/verifications/{verification_id}"): {"version": 1, "outcome": "PRESENT", "evidence": "phone"},
        ("POST", "/cycle/proposals"): {"resident_id": far["resident_id"], "outcome": "LEFT_CITY",
                                       "source": "police"},  # admin only: a worker is refused
        ("POST", "/cycle/reports/{community_id}/{month}/submit"): {"version": 0},  # c3: 404 before the month
        ("POST", "/cycle/reports/{community_id}/{month}/approve"): {"version": 1},  # supervisors only: 403
        ("POST", "/cycle/reports/{community_id}/{month}/return"): {"version": 1, "reason": "x"},  # 403
        ("POST", "/cycle/reports/{community_id}/{month}/corrections"): {"code": "stock.total", "value": 1,
                                                                        "reason": "x"},  # c3: 404
        # Partner administration (admins only) and partner routes (partner roles only): 403 (tests/sharing).
        ("POST", "/sharing/clients"): {"client_id": "sweep-station", "display_name": "x", "kind": "police"},
        ("PUT", "/sharing/clients/{user_id}/jurisdiction"): {"version": 1, "division_ids": [far["division_id"]]},
        ("POST", "/sharing/clients/{user_id}/secrets"): None,
        ("POST", "/sharing/clients/{user_id}/secrets/{secret_id}/retire"): None,
        ("POST", "/sharing/clients/{user_id}/disable"): None,
        ("POST", "/sharing/clients/{user_id}/enable"): None,
        ("PUT", "/sharing/profiles/{kind}"): {"version": 1, "field_groups": ["identity"], "legal_basis": "x",
                                              "purpose": "x", "approval_required": False, "retention_days": 1},
        ("POST", "/partner/police/lookup"): {"id_number": far["resident_id_number"]},
        ("POST", "/partner/police/feed"): {},
        ("POST", "/partner/outflow/residents"): {},
        ("POST", "/partner/outflow/feed"): {},
        ("POST", "/partner/outflow/assistance-requests"): {
            "reference": "SWEEP-1", "id_number": far["resident_id_number"], "name": "远方", "topic": "residence"},
        ("POST", "/partner/outflow/assistance-requests/{request_id}/progress"): {"state": "matched", "version": 1},
        ("POST", "/partner/outflow/assistance-requests/{request_id}/answer"): {"finding": "confirmed", "version": 1},
        # Landlords' own routes refuse staff (403); the staff routes answer 404 for c3's landlords.
        ("POST", "/partner/landlord/dwelling-registrations"): {"community_id": far["community_id"], "address": "x"},
        ("POST", "/partner/landlord/move-ins"): {"dwelling_id": far["dwelling_id"], "name": "x",
                                                "id_number": far["resident_id_number"], "moved_in_on": "2026-11-23"},
        ("POST", "/partner/landlord/move-outs"): {"tenancy_id": "0" * 32, "moved_out_on": "2026-11-23"},
        ("POST", "/landlord-accounts"): {"landlord_id": far["landlord_id"], "phone": "13900004444",
                                         "initial_password": "Sweep-Test-2026!"},
        ("POST", "/landlord-accounts/{account_id}/confirm"): {"version": 1},
        ("POST", "/landlord-accounts/{account_id}/reject"): {"version": 1, "reason": "other"},
        ("POST", "/landlord-dwelling-claims/{claim_id}/confirm"): {"version": 1},
        ("POST", "/landlord-dwelling-claims/{claim_id}/reject"): {"version": 1, "reason": "other"},
        ("POST", "/landlord-reports/{report_id}/register"): {"version": 1, "hukou_code": "411602"},
        ("POST", "/landlord-reports/{report_id}/dismiss"): {"version": 1, "reason": "other"},
        # Webhook administration: admins only, a worker is refused (403).
        ("POST", "/admin/webhooks"): {"partner_user_id": far["user_id"], "url": "https://partner.example/hook",
                                      "event_types": ["resident.arrived"], "division_id": far["division_id"]},
        ("PATCH", "/admin/webhooks/{webhook_id}"): {"version": 1, "active": False},
        ("POST", "/admin/webhooks/{webhook_id}/secret"): {"version": 1},
        ("POST", "/admin/webhooks/{webhook_id}/events/{event_id}/redeliver"): None,
        # The approval queue: supervisors and admins decide (a worker is refused, 403); partners collect (403).
        ("POST", "/sharing/disclosure-requests/{request_id}/approve"): {"version": 1},
        ("POST", "/sharing/disclosure-requests/{request_id}/deny"): {"version": 1, "reason": "x"},
        ("POST", "/partner/disclosure-requests/{request_id}/collect"): None,
    }


# Query parameters a route requires.
PARAMS = {
    ("GET", "/residents/{resident_id}/health"): {"purpose": "visit"},
    ("PUT", "/residents/{resident_id}/health"): {"purpose": "visit"},
    ("GET", "/residents/{resident_id}/services"): {"purpose": "visit"},
}
# Routes that are about the caller, public, or take files: their scope is tested where they live.
ELSEWHERE = {
    ("POST", "/auth/login"), ("POST", "/auth/refresh"), ("POST", "/auth/logout"), ("GET", "/auth/me"),
    ("POST", "/auth/password"), ("GET", "/healthz"), ("GET", "/docs"),
    ("POST", "/divisions/import"),  # tests/places: admin only
    ("POST", "/residents/import"),  # tests/people/test_import.py: out-of-scope dwellings are row errors
    ("POST", "/partner/police/registrations"),  # police only; outside the jurisdiction: tests/sharing
    # The catalogue is city-wide reference data, not scoped: roles are tested in tests/catalog.
    ("GET", "/catalog"), ("GET", "/catalog/versions"), ("GET", "/catalog/versions/{version}"),
    ("POST", "/visits/{visit_id}/photos"),  # multipart: tests/visits/test_photos.py (scope 404, author 403)
    ("GET", "/sync/pull"),  # needs X-Device-Id; scope per table and exits: tests/sync/test_pull.py
    ("POST", "/sync/push"),  # needs X-Device-Id; out-of-scope records are refused one by one: tests/sync/test_push.py
    # The supervisor board's static files (public, no data): tests/test_access_rules.py and
    # tests/audit/test_board_browser.py
    ("GET", "/board"), ("GET", "/board/board.js"), ("GET", "/board/board.css"),
    ("POST", "/partner/oauth/token"),  # public, machine clients only: tests/sharing/test_clients.py
    ("POST", "/partner/landlord/register"),  # public: tests/sharing/test_landlord_accounts.py
}
# List routes: filtered to the far records, worker1 must get nothing of them (or 403).
LISTS = {
    ("GET", "/users"): ({}, 403),
    ("GET", "/sharing/police-reports"): ({}, 200),
    ("GET", "/divisions"): ({"parent_id": "{division_id}"}, 200),
    ("GET", "/dwellings"): ({"community_id": "{division_id}"}, 200),
    ("GET", "/residents"): ({"community_id": "{division_id}"}, 200),
    ("GET", "/landlords"): ({}, 200),
    ("GET", "/transfers"): ({}, 200),
    ("GET", "/duplicates"): ({}, 403),
    ("GET", "/corrections"): ({}, 200),
    ("GET", "/audit/events"): ({}, 403),
    ("GET", "/audit/verify"): ({}, 403),
    ("GET", "/residents/import/template"): ({}, 200),
    ("GET", "/tasks"): ({"community_id": "{division_id}"}, 200),
    ("GET", "/me/tasks"): ({"upcoming_days": "31"}, 200),
    ("GET", "/assistance-requests"): ({"community_id": "{division_id}"}, 200),
    ("GET", "/cycle/periods"): ({"community_id": "{division_id}"}, 200),
    ("GET", "/cycle/verifications"): ({"community_id": "{division_id}"}, 200),
    # The list's files (tests/cycle/test_verification_export.py reads them back): a CSV of only its header.
    ("GET", "/cycle/verifications.csv"): ({"community_id": "{division_id}"}, 200),
    ("GET", "/cycle/verifications.xlsx"): ({"community_id": "{division_id}"}, 200),
    ("GET", "/visits"): ({"community_id": "{division_id}"}, 200),
    ("GET", "/sync/devices"): ({}, 200),
    ("GET", "/sync/conflicts"): ({}, 403),
    # Supervisor and auditor views: workers are refused; supervisors of another district see nothing of c3
    # (tests/audit: test_quality, test_activity, test_pictures).
    ("GET", "/audit/checkpoints"): ({}, 403),
    ("GET", "/audit/quality/visits"): ({"division_id": "{division_id}"}, 403),
    ("GET", "/audit/quality/queue"): ({"division_id": "{division_id}"}, 403),
    ("GET", "/audit/activity"): ({"division_id": "{division_id}"}, 403),
    ("GET", "/audit/access"): ({}, 403),
    ("GET", "/audit/access/readers"): ({}, 403),
    ("GET", "/audit/access/export"): ({}, 403),
    ("GET", "/audit/access/disclosures/export"): ({}, 403),
    ("GET", "/audit/pictures/worker-day"): ({"worker_id": "{user_id}"}, 403),
    ("GET", "/audit/pictures/coverage"): ({"community_id": "{division_id}"}, 403),
    ("GET", "/audit/pictures/trend"): ({"division_id": "{division_id}"}, 403),
    ("GET", "/sharing/clients"): ({}, 403),
    ("GET", "/sharing/profiles"): ({}, 403),
    # Landlords: their own routes refuse staff; the staff queues show nothing of c3.
    ("GET", "/partner/landlord/me"): ({}, 403),
    ("GET", "/partner/landlord/dwellings"): ({}, 403),
    ("GET", "/partner/landlord/dwelling-registrations"): ({}, 403),
    ("GET", "/partner/landlord/reports"): ({}, 403),
    ("GET", "/partner/landlord/tenants"): ({}, 403),
    ("GET", "/partner/outflow/assistance-requests"): ({}, 403),  # outflow cities only
    ("GET", "/landlord-accounts"): ({}, 200),
    ("GET", "/landlord-dwelling-claims"): ({}, 200),
    ("GET", "/landlord-reports"): ({}, 200),
    ("GET", "/admin/webhooks"): ({}, 403),
    ("GET", "/sharing/disclosure-requests"): ({}, 403),  # supervisors, admins, auditors: tests/sharing
}


def operations() -> list[tuple[str, str]]:
    ops = []
    for path, route in api_routes(app):
        short = path.removeprefix(V1)
        ops.extend((method, short) for method in sorted(route.methods or ()))
    return ops


def test_every_route_is_swept(far: dict[str, Any], world: World) -> None:
    covered = set(bodies(far, world)) | ELSEWHERE | set(LISTS)
    reads = {(m, p) for m, p in operations() if m == "GET" and "{" in p}
    missing = [op for op in operations() if op not in covered and op not in reads]
    assert missing == [], f"add these routes to the scope sweep: {missing}"


def test_worker_cannot_touch_another_district(api: Api, world: World, far: dict[str, Any]) -> None:
    table = bodies(far, world)
    checked = 0
    for method, path in operations():
        if (method, path) in ELSEWHERE or (method, path) in LISTS:
            continue
        url = V1 + path.format(**far)
        kwargs: dict[str, Any] = {"params": PARAMS.get((method, path), {})}
        if method != "GET":
            body = table[(method, path)]
            if body is not None:
                kwargs["json"] = body
        response = api.as_("worker1", method, url, **kwargs)
        assert response.status_code in (403, 404), (method, path, response.status_code, response.text)
        checked += 1
    assert checked >= 30
    # Nothing changed: the far records are as they were made.
    resident = api.as_("worker3", "GET", f"{V1}/residents/{far['resident_id']}").json()
    assert (resident["version"], resident["status"], resident["occupation"]) == (1, "REGISTERED", None)


def test_lists_show_nothing_from_another_district(api: Api, far: dict[str, Any]) -> None:
    far_ids = {v for v in far.values() if isinstance(v, str)}
    for (method, path), (params, status) in LISTS.items():
        query = {k: v.format(**far) for k, v in params.items()}
        response = api.as_("worker1", method, V1 + path, params=query)
        assert response.status_code == status, (path, response.text)
        if status == 200 and response.headers["content-type"].startswith("application/json"):
            items = response.json()["items"]
            assert not {item["id"] for item in items} & far_ids, path
            if query:
                assert items == [], path
        if status == 200 and response.headers["content-type"].startswith("text/csv") and query:
            assert len(response.content.decode("utf-8-sig").splitlines()) == 1, path


def test_ids_in_bodies_outside_scope_are_not_found(api: Api, world: World, far: dict[str, Any],
                                                    engine: Any) -> None:
    """Routes on the caller's own records that take *another* record's id in the body: an id from another
    district is 404, exactly like an id that does not exist, and nothing changes."""
    c1 = world.community("c1")
    own = world.dwellings[c1["id"]]
    resident = api.as_("worker1", "POST", V1 + "/residents", json={
        "name": "近邻", "id_number": valid_id("41160219920202003"), "hukou_code": "411602",
        "arrival_date": "2026-09-01", "dwelling_id": own[0]}).json()
    twin = api.as_("worker1", "POST", V1 + "/residents", json={
        "name": "近邻", "id_number": valid_id("41160219920202005"), "hukou_code": "411602",
        "arrival_date": "2026-09-01", "dwelling_id": own[1]}).json()
    with engine.connect() as conn:
        free = conn.exec_driver_sql(
            "SELECT id, version FROM dwellings WHERE community_id = ? AND landlord_id IS NULL AND active "
            "ORDER BY id" if engine.dialect.name == "sqlite" else
            "SELECT id, version FROM dwellings WHERE community_id = %s AND landlord_id IS NULL AND active "
            "ORDER BY id", (c1["id"],)).first()
    cases: list[tuple[str, str, str, dict[str, Any]]] = [
        ("worker1", "PUT", f"/dwellings/{free[0]}/landlord", {"version": free[1], "landlord_id": far["landlord_id"]}),
        ("worker1", "POST", f"/residents/{resident['id']}/move", {"version": 1, "dwelling_id": far["dwelling_id"],
                                                       "moved_on": "2026-10-01"}),
        ("sup_street", "POST", f"/residents/{resident['id']}/merge", {"merged_id": far["twin_id"],
                                                        "reason": "duplicate_registration",
                                                        "version_keep": 1, "version_merged": 1}),
        ("sup_street", "POST", f"/residents/{twin['id']}/merge", {"merged_id": far["resident_id"],
                                                    "reason": "duplicate_registration",
                                                    "version_keep": 1, "version_merged": 1}),
        ("worker1", "POST", f"/dwellings/{own[2]}/move", {"community_id": far["division_id"]}),
        ("worker1", "POST", "/tasks", {"resident_id": far["resident_id"], "reason": "other",
                            "due_date": (datetime.now(UTC) + timedelta(hours=8)).date().isoformat()}),
        ("worker1", "POST", "/visits", phone_visit_body(far["resident_id"])),
        ("worker1", "POST", f"/visits/{far['visit_id']}/corrections",
         {**phone_visit_body(), "correction_reason": "wrong_time"}),
    ]
    for user, method, path, body in cases:
        response = api.as_(user, method, V1 + path, json=body)
        assert response.status_code == 404, (method, path, response.status_code, response.text)
        assert not {v for v in far.values() if isinstance(v, str)} & set(str(response.json()).split("'")), path
    after = api.as_("worker3", "GET", f"{V1}/residents/{far['resident_id']}").json()
    assert (after["version"], after["status"]) == (1, "REGISTERED")
    assert api.as_("worker1", "GET", f"{V1}/residents/{resident['id']}").json()["version"] == 1


def test_client_ids_taken_in_another_district(api: Api, world: World, far: dict[str, Any]) -> None:
    """Ids a client chooses (in bodies) that records of another district hold: answered exactly like a
    reference outside scope (404, same body), never `visit_id_taken`/`delivery_id_taken`, so a taken id
    does not confirm that a record exists. The same through the sync push: tests/sync/test_push.py."""
    c1 = world.community("c1")
    own = api.as_("worker1", "GET", V1 + "/residents", params={"community_id": c1["id"], "status": "REGISTERED",
                                                               "limit": 1}).json()["items"][0]["id"]
    far_delivery = "far-delivery-0000000001"
    made = api.as_("worker3", "POST", V1 + "/visits", json={
        **phone_visit_body(far["resident_id"]),
        "services": [{"item_code": "education", "quantity": 1, "id": far_delivery}]})
    assert made.status_code == 201, made.text
    own_visit = api.as_("worker1", "POST", V1 + "/visits", json=phone_visit_body(own))
    assert own_visit.status_code == 201, own_visit.text
    outside = api.as_("worker1", "POST", V1 + "/visits", json=phone_visit_body(far["resident_id"]))
    assert outside.status_code == 404
    cases: dict[tuple[str, str], dict[str, Any]] = {
        ("/visits", "id"): {**phone_visit_body(own), "id": far["visit_id"]},
        ("/visits", "services[].id"): {**phone_visit_body(own), "services": [
            {"item_code": "education", "quantity": 1, "id": far_delivery}]},
        (f"/visits/{own_visit.json()['id']}/corrections", "id"): {
            **phone_visit_body(), "correction_reason": "wrong_time", "id": far["visit_id"]},
    }
    for (path, field), body in cases.items():
        response = api.as_("worker1", "POST", V1 + path, json=body)
        assert (response.status_code, response.json()) == (404, outside.json()), (path, field, response.text)
