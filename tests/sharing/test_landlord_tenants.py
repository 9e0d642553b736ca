"""Tenant reports from landlords: a move-in applies to a person the register holds or waits for a worker to
register them, and leads to a worker task, a visit and a verification; a move-out closes the tenancy and asks for
a verification visit; a landlord sees only their own current tenants, masked, never a health field, and every
read is on the tenant's disclosure record."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine

from app.core.types import city_today
from app.sharing.landlords.tenants import service
from tests.assertions import assert_error, ok
from tests.conftest import Api, World
from tests.db import all_audit_text, rows
from tests.factories import post_visit, register_resident, valid_id, visit_body
from tests.people.rec_helpers import put_health
from tests.sharing.landlord_helpers import (
    PARTNER,
    REPORTS,
    confirmed_landlord,
    free_dwellings,
    move_in_body,
    walk_keys,
)

FRIDAY = date(2026, 11, 27)
TENANT_KEYS = {"tenancy_id", "dwelling_id", "address", "name", "id_number_masked", "phone_masked", "moved_in_on"}
PAGE_KEYS = {"items", "total", "limit", "offset"}


@pytest.fixture(autouse=True)
def _friday(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "today", lambda: FRIDAY)


def move_in(api: Api, phone: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    return dict(ok(api.as_(phone, "POST", f"{PARTNER}/move-ins", json=body), status))


def test_working_days() -> None:
    # Monday to Friday; Saturday and Sunday do not count.
    assert service.working_days_after(date(2026, 11, 24), FRIDAY) == 3
    assert not service.is_late(date(2026, 11, 24), FRIDAY)
    assert service.is_late(date(2026, 11, 23), FRIDAY)
    assert service.working_days_after(date(2026, 11, 20), date(2026, 11, 25)) == 3
    assert service.working_days_after(FRIDAY, FRIDAY) == 0


def test_move_in_of_a_registered_resident_opens_the_tenancy_and_gives_a_task(api: Api, world: World,
                                                                              engine: Engine) -> None:
    landlord = confirmed_landlord(api, world)
    resident = register_resident(api, "worker1", free_dwellings(engine, world)[0]["id"], name="租客乙",
                                 id_number=valid_id("41160219950505002"), phone="13700001234")
    report = move_in(api, landlord.phone, move_in_body(landlord.dwelling_id, moved_in_on="2026-11-24"))
    assert (report["state"], report["late"], report["id_number_masked"]) == ("applied", False, "4116**********0024")
    [tenancy] = rows(engine, "SELECT id, source, move_out FROM tenancies WHERE resident_id = :r AND dwelling_id = :d",
                     r=resident["id"], d=landlord.dwelling_id)
    assert (report["tenancy_id"], tenancy["source"], tenancy["move_out"]) == (tenancy["id"], "landlord", None)
    assert rows(engine, "SELECT dwelling_id FROM residents WHERE id = :r", r=resident["id"]) == [
        {"dwelling_id": landlord.dwelling_id}]
    [stored] = rows(engine, "SELECT task_id FROM landlord_reports WHERE id = :i", i=report["id"])
    [task] = rows(engine, "SELECT kind, state, community_id FROM tasks WHERE id = :t", t=stored["task_id"])
    assert task == {"kind": "new_arrival_visit", "state": "open", "community_id": world.community("c1")["id"]}
    # A retry is the same report.
    assert move_in(api, landlord.phone, move_in_body(landlord.dwelling_id, moved_in_on="2026-11-24"), 200)["id"] \
        == report["id"]
    staff = ok(api.as_("worker1", "GET", REPORTS, params={"state": "applied"}))["items"]
    assert [(r["id"], r["resident_id"], r["phone_masked"]) for r in staff] == [
        (report["id"], resident["id"], "137****1234")]


def test_a_landlord_sees_only_their_current_tenants_masked_and_each_read_is_disclosed(api: Api, world: World,
                                                                                     engine: Engine) -> None:
    a = confirmed_landlord(api, world)
    b = confirmed_landlord(api, world, phone="13912349999", id_number=valid_id("41010519700101061"),
                           name="房东丙", address="文化路90号")
    resident = register_resident(api, "worker1", free_dwellings(engine, world)[0]["id"], name="租客乙",
                                 id_number=valid_id("41160219950505002"), phone="13700001234")
    assert put_health(api, resident["id"], pregnancy="pregnant").status_code == 200
    move_in(api, a.phone, move_in_body(a.dwelling_id))
    page = ok(api.as_(a.phone, "GET", f"{PARTNER}/tenants"))
    assert page["total"] == 1
    assert walk_keys(page) == PAGE_KEYS | TENANT_KEYS  # no health, visit or service field at any depth
    [tenant] = page["items"]
    assert (tenant["name"], tenant["id_number_masked"], tenant["phone_masked"], tenant["moved_in_on"]) == (
        "租客乙", "4116**********0024", "137****1234", "2026-11-23")
    assert "pregnan" not in str(page)
    # Landlord B sees none of A's tenants and can report nothing against A's dwelling or tenancy.
    assert ok(api.as_(b.phone, "GET", f"{PARTNER}/tenants"))["total"] == 0
    assert_error(api.as_(b.phone, "POST", f"{PARTNER}/move-ins", json=move_in_body(a.dwelling_id)), 404)
    assert_error(api.as_(b.phone, "POST", f"{PARTNER}/move-outs", json={
        "tenancy_id": tenant["tenancy_id"], "moved_out_on": "2026-11-25"}), 404)
    assert ok(api.as_(b.phone, "GET", f"{PARTNER}/reports"))["total"] == 0
    # The read is on the resident's disclosure record, which the dossier shows.
    disclosed = rows(engine, "SELECT partner_kind, partner_id, field_groups FROM disclosures WHERE resident_id = :r",
                     r=resident["id"])
    assert disclosed == [{"partner_kind": "landlord", "partner_id": a.landlord_id,
                          "field_groups": "id_number_masked,name,phone_masked,tenancy_dates"}]
    dossier = ok(api.as_("worker1", "GET", f"/api/v1/residents/{resident['id']}/dossier"))
    assert [d["partner_kind"] for d in dossier["disclosures"]] == ["landlord"]


def test_a_move_in_leads_to_a_worker_task_a_visit_and_a_verification(api: Api, world: World, engine: Engine) -> None:
    free = free_dwellings(engine, world)[0]
    landlord = confirmed_landlord(api, world, address=free["address"])
    assert landlord.dwelling_id == free["id"]  # the dwelling at the address got the landlord
    assert ok(api.as_("admin", "POST", "/api/v1/cycle/open", json={}))["periods_created"] >= 1
    report = move_in(api, landlord.phone, move_in_body(landlord.dwelling_id, moved_in_on="2026-11-20"))
    assert (report["state"], report["late"], report["tenancy_id"]) == ("pending", True, None)
    # The queue: the community's worker, not another district's.
    assert ok(api.as_("worker3", "GET", REPORTS))["total"] == 0
    url = f"{REPORTS}/{report['id']}/register"
    assert_error(api.as_("worker3", "POST", url, json={"version": 1, "hukou_code": "411602"}), 404)
    [queued] = ok(api.as_("worker1", "GET", REPORTS, params={"state": "pending", "kind": "move_in"}))["items"]
    assert (queued["id"], queued["late"], queued["id_number_masked"]) == (report["id"], True, "4116**********0024")
    done = ok(api.as_("worker1", "POST", url, json={"version": 1, "hukou_code": "411602"}))
    assert (done["state"], done["decided_by"]) == ("registered", world.users["worker1"])
    assert_error(api.as_("worker1", "POST", url, json={"version": 2, "hukou_code": "411602"}), 409,
                 "report_not_pending")
    [resident] = rows(engine, "SELECT id, name, dwelling_id, arrival_date FROM residents WHERE id = :r",
                      r=done["resident_id"])
    assert (resident["name"], resident["dwelling_id"], str(resident["arrival_date"])) == (
        "租客乙", landlord.dwelling_id, "2026-11-20")
    task = ok(api.as_("worker1", "GET", f"/api/v1/tasks/{done['task_id']}"))
    assert (task["kind"], task["state"]) == ("new_arrival_visit", "open")
    who = {"id": resident["id"], "lat": free["lat"], "lng": free["lng"]}
    visit = post_visit(api, visit_body(who))
    assert ok(api.as_("worker1", "GET", f"/api/v1/tasks/{done['task_id']}"))["state"] == "done"
    [verification] = ok(api.as_("worker1", "GET", "/api/v1/cycle/verifications",
                                params={"resident_id": resident["id"]}))["items"]
    recorded = ok(api.as_("worker1", "PUT", f"/api/v1/cycle/verifications/{verification['id']}", json={
        "version": verification["version"], "outcome": "PRESENT", "evidence": "visit", "visit_id": visit["id"]}))
    assert recorded["outcome"] == "PRESENT"
    # The dwelling's other current tenants (demo residents) are the landlord's tenants too.
    names = [t["name"] for t in ok(api.as_(landlord.phone, "GET", f"{PARTNER}/tenants"))["items"]]
    assert "租客乙" in names
    # The whole flow left no personal value in the audit log.
    text = all_audit_text(engine)
    assert not [v for v in ("租客乙", valid_id("41160219950505002"), "13700001234", landlord.phone, "房东甲")
                if v in text]


def test_a_move_out_closes_the_tenancy_and_asks_the_worker_to_verify(api: Api, world: World, engine: Engine) -> None:
    landlord = confirmed_landlord(api, world)
    resident = register_resident(api, "worker1", free_dwellings(engine, world)[0]["id"], name="租客乙",
                                 id_number=valid_id("41160219950505002"))
    tenancy_id = move_in(api, landlord.phone, move_in_body(landlord.dwelling_id))["tenancy_id"]
    out = f"{PARTNER}/move-outs"
    assert_error(api.as_(landlord.phone, "POST", out, json={"tenancy_id": tenancy_id, "moved_out_on": "2026-11-01"}),
                 422, "date_before_move_in")
    assert_error(api.as_(landlord.phone, "POST", out, json={"tenancy_id": "0" * 32, "moved_out_on": "2026-11-26"}),
                 404)
    report = ok(api.as_(landlord.phone, "POST", out, json={"tenancy_id": tenancy_id, "moved_out_on": "2026-11-26"}),
                201)
    assert (report["kind"], report["state"], report["late"]) == ("move_out", "applied", False)
    assert str(rows(engine, "SELECT move_out FROM tenancies WHERE id = :t", t=tenancy_id)[0]["move_out"]) \
        == "2026-11-26"
    [task] = rows(engine, "SELECT t.kind, t.reason, t.state, t.note FROM tasks t JOIN landlord_reports r "
                          "ON r.task_id = t.id WHERE r.id = :i", i=report["id"])
    assert task == {"kind": "follow_up", "reason": "verify_residence", "state": "open", "note": "landlord_move_out"}
    assert rows(engine, "SELECT status FROM residents WHERE id = :r", r=resident["id"]) == [{"status": "REGISTERED"}]
    assert ok(api.as_(landlord.phone, "GET", f"{PARTNER}/tenants"))["total"] == 0
    assert ok(api.as_(landlord.phone, "POST", out, json={"tenancy_id": tenancy_id, "moved_out_on": "2026-11-26"})
              )["id"] == report["id"]
    assert_error(api.as_(landlord.phone, "POST", out, json={"tenancy_id": tenancy_id, "moved_out_on": "2026-11-27"}),
                 409, "tenancy_closed")


def test_report_errors_and_dismissal(api: Api, world: World) -> None:
    landlord = confirmed_landlord(api, world)
    ins = f"{PARTNER}/move-ins"
    assert_error(api.as_(landlord.phone, "POST", ins, json=move_in_body("0" * 32)), 404)
    assert_error(api.as_(landlord.phone, "POST", ins, json=move_in_body(landlord.dwelling_id,
                                                                        id_number="411602199505050020")),
                 422, "id_check_digit")
    future = city_today().replace(year=city_today().year + 1).isoformat()
    assert_error(api.as_(landlord.phone, "POST", ins, json=move_in_body(landlord.dwelling_id, moved_in_on=future)),
                 422, "date_out_of_range")
    assert_error(api.as_(landlord.phone, "POST", ins, json=move_in_body(landlord.dwelling_id, moved_in_on=20261123)),
                 422)
    report = move_in(api, landlord.phone, move_in_body(landlord.dwelling_id))
    url = f"{REPORTS}/{report['id']}/dismiss"
    assert_error(api.as_("worker1", "POST", url, json={"version": 1, "reason": "because"}), 422)
    assert_error(api.as_("worker3", "POST", url, json={"version": 1, "reason": "wrong_person"}), 404)
    assert_error(api.as_("worker1", "POST", url, json={"version": 2, "reason": "wrong_person"}), 409, "stale_version")
    done = ok(api.as_("worker1", "POST", url, json={"version": 1, "reason": "wrong_person"}))
    assert (done["state"], done["name"], done["phone_masked"]) == ("dismissed", None, None)
    assert_error(api.as_("worker1", "POST", url, json={"version": 2, "reason": "wrong_person"}), 409,
                 "report_not_pending")
    mine = ok(api.as_(landlord.phone, "GET", f"{PARTNER}/reports"))["items"]
    assert [(r["id"], r["state"]) for r in mine] == [(report["id"], "dismissed")]
    assert_error(api.as_("worker1", "POST", ins, json=move_in_body(landlord.dwelling_id)), 403)


def test_the_tenant_list_follows_the_landlord_profile(api: Api, world: World, engine: Engine) -> None:
    """The ledger entry carries the legal basis of the profile in force; while the profile requires a supervisor's
    approval of each disclosure, the list is refused and nothing is disclosed."""
    a = confirmed_landlord(api, world)
    resident = register_resident(api, "worker1", free_dwellings(engine, world)[0]["id"], name="租客丁",
                                 id_number=valid_id("41160219950505010"), phone=None)
    move_in(api, a.phone, move_in_body(a.dwelling_id, name="租客丁", id_number=resident["id_number"]))
    profile = ok(api.as_("admin", "GET", "/api/v1/sharing/profiles/landlord"))
    changed = {key: profile[key] for key in ("version", "field_groups", "purpose", "retention_days")}
    ok(api.as_("admin", "PUT", "/api/v1/sharing/profiles/landlord", json={
        **changed, "legal_basis": "《商品房屋租赁管理办法》第十九条", "approval_required": False}))
    assert ok(api.as_(a.phone, "GET", f"{PARTNER}/tenants"))["total"] == 1
    assert rows(engine, "SELECT legal_basis FROM disclosures WHERE resident_id = :r", r=resident["id"]) == [
        {"legal_basis": "《商品房屋租赁管理办法》第十九条"}]
    ok(api.as_("admin", "PUT", "/api/v1/sharing/profiles/landlord", json={
        **changed, "version": changed["version"] + 1, "legal_basis": "x", "approval_required": True}))
    held = api.as_(a.phone, "GET", f"{PARTNER}/tenants")  # held for approval: tests/sharing/test_disclosure_approvals
    assert held.status_code == 202 and held.json()["state"] == "pending" and "items" not in held.json()
    assert len(rows(engine, "SELECT id FROM disclosures WHERE resident_id = :r", r=resident["id"])) == 1
