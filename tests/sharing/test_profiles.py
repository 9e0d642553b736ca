"""Disclosure profiles: seeded defaults, admin edits as new versions (audited, old ones kept), narrowed but
never widened past a kind's allow-list."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from app.core.db import unit_of_work
from app.sharing.profiles.service import current_profile
from tests.assertions import assert_error, ok
from tests.conftest import Api
from tests.db import audit_events, rows

URL = "/api/v1/sharing/profiles"


def edit(**over: Any) -> dict[str, Any]:
    return {"version": 1, "field_groups": ["identity", "residence", "contact"], "legal_basis": "《居住证暂行条例》",
            "purpose": "治安管理", "approval_required": False, "retention_days": 90, **over}


def test_defaults_are_seeded(api: Api) -> None:
    profiles = {p["kind"]: p for p in ok(api.as_("admin", "GET", URL))}
    assert set(profiles) == {"police", "landlord", "outflow_city"}
    assert profiles["police"]["field_groups"] == ["identity", "residence"]
    assert "phone" not in profiles["police"]["fields"] and "id_number" in profiles["police"]["fields"]
    assert profiles["landlord"]["fields"] == ["tenancy_id", "name", "id_number_masked", "move_in", "move_out"]
    assert {"verification_status", "fp_document_status"} <= set(profiles["outflow_city"]["fields"])
    assert all(p["version"] == 1 and p["legal_basis"] for p in profiles.values())


def test_an_edit_is_a_new_audited_version(api: Api, engine: Engine) -> None:
    changed = ok(api.as_("admin", "PUT", URL + "/police", json=edit()))
    assert changed["version"] == 2 and "phone" in changed["fields"] and changed["retention_days"] == 90
    history = ok(api.as_("auditor", "GET", URL + "/police/versions"))
    assert [p["version"] for p in history] == [2, 1]
    assert ok(api.as_("auditor", "GET", URL + "/police"))["version"] == 2
    assert len(rows(engine, "SELECT id FROM disclosure_profiles WHERE kind = 'police'")) == 2
    event = audit_events(engine, "sharing.profile_change")
    assert len(event) == 1 and "police" in str(event[0]["detail"])
    with unit_of_work(engine=engine) as session:
        profile = current_profile(session, "police")
    assert profile.version == 2 and "contact" in profile.field_groups
    assert_error(api.as_("admin", "PUT", URL + "/police", json=edit()), 409, "stale_version")


def test_a_profile_cannot_be_widened_past_the_allow_list(api: Api) -> None:
    response = api.as_("admin", "PUT", URL + "/police", json=edit(field_groups=["identity", "fp_document"]))
    assert_error(response, 422, "field_group_not_allowed")
    response = api.as_("admin", "PUT", URL + "/landlord", json=edit(field_groups=["identity"]))
    assert_error(response, 422, "field_group_not_allowed")
    assert_error(api.as_("admin", "PUT", URL + "/police", json=edit(field_groups=["health"])), 422)
    assert_error(api.as_("admin", "GET", URL + "/worker"), 422)


def test_only_admins_edit_and_staff_do_not_read(api: Api) -> None:
    assert_error(api.as_("auditor", "PUT", URL + "/police", json=edit()), 403, "forbidden")
    assert_error(api.as_("sup_district", "GET", URL), 403, "forbidden")
    assert_error(api.as_("worker1", "GET", URL + "/police/versions"), 403, "forbidden")
