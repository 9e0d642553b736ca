"""What the audit log records, who may read it, and how auditors filter and page through it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine

from tests.audit.conftest import EVENTS, VERIFY, events, raw_rows
from tests.conftest import PASSWORD, Api, World

LOGIN = "/api/v1/auth/login"


def _code(response: Any) -> str:
    return str(response.json()["code"])


# --- who may read -----------------------------------------------------------------------------------

def test_only_auditors_read_or_verify(api: Api, world: World) -> None:
    roles = {"admin": "admin", "worker1": "worker", "sup_district": "supervisor", "sup_street": "supervisor"}
    for username in roles:
        for url in (EVENTS, VERIFY):
            response = api.as_(username, "GET", url)
            assert response.status_code == 403, (username, response.text)
            assert _code(response) == "forbidden"
    # The refusals are themselves in the log, with who tried.
    for username, role in roles.items():
        denied = events(api, action="http.denied", actor_id=world.users[username])
        assert {e["target_id"] for e in denied} == {f"GET {EVENTS}", f"GET {VERIFY}"}, username
        assert all(e["status_code"] == 403 and e["outcome"] == "denied" for e in denied)
        assert all(e["actor_role"] == role for e in denied)


def test_auditor_reads(api: Api) -> None:
    response = api.as_("auditor", "GET", EVENTS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "total", "limit", "offset"}
    assert body["total"] >= 1 and body["limit"] == 50 and body["offset"] == 0
    item = body["items"][0]
    assert set(item) == {"id", "at", "actor_id", "actor_role", "action", "target_type", "target_id", "fields",
                         "outcome", "status_code", "purpose", "request_id", "client_ip", "detail", "chain_version",
                         "area_path", "district_code", "hmac_kid", "prev_hash", "hash"}


def test_unauthenticated_requests_are_recorded(api: Api) -> None:
    c = api.client
    assert c.get(EVENTS).status_code == 401
    assert c.get(EVENTS, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    denied = events(api, action="http.denied", target_id=f"GET {EVENTS}")
    assert len(denied) == 2
    assert all(e["status_code"] == 401 and e["actor_id"] is None and e["detail"] == {"code": "unauthorized"}
               for e in denied)


# --- what is recorded -------------------------------------------------------------------------------

def test_logins_recorded_with_outcome_and_never_the_password(api: Api, world: World, engine: Engine) -> None:
    c = api.client
    wrong = "Not-The-Password-42"
    assert c.post(LOGIN, json={"username": "worker1", "password": wrong},
                  headers={"X-Request-ID": "req-login-fail"}).status_code == 401
    assert c.post(LOGIN, json={"username": "ghost", "password": wrong}).status_code == 401
    assert c.post(LOGIN, json={"username": "worker1", "password": PASSWORD},
                  headers={"X-Request-ID": "req-login-ok"}).status_code == 200

    failed = events(api, request_id="req-login-fail")
    assert len(failed) == 1
    f = failed[0]
    assert (f["action"], f["outcome"], f["status_code"]) == ("auth.login", "failure", 401)
    assert f["target_id"] == world.users["worker1"] and f["detail"] == {"reason": "wrong_password"}
    assert f["client_ip"] == "testclient"
    assert f["at"].endswith(("Z", "+00:00"))

    ok = events(api, request_id="req-login-ok")
    assert [(e["action"], e["outcome"], e["actor_id"], e["actor_role"]) for e in ok] == [
        ("auth.login", "success", world.users["worker1"], "worker")]

    unknown = [e for e in events(api, action="auth.login", outcome="failure") if e["target_id"] is None]
    assert [e["detail"] for e in unknown] == [{"reason": "unknown_user"}]

    stored = repr(raw_rows(engine))
    assert wrong not in stored and PASSWORD not in stored and "ghost" not in stored


def test_refresh_and_reuse_recorded(api: Api, world: World) -> None:
    tokens = api.login("worker2")
    c = api.client
    assert c.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 200
    assert c.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401
    mine = events(api, actor_id=world.users["worker2"], action="auth.refresh*")
    assert [(e["action"], e["outcome"]) for e in reversed(mine)] == [
        ("auth.refresh", "success"), ("auth.refresh_reuse", "denied")]


def test_write_records_table_id_and_field_names_never_values(api: Api, world: World, engine: Engine) -> None:
    uid = world.users["worker1"]
    user = api.as_("admin", "GET", f"/api/v1/users/{uid}").json()
    marker = "Wang Xiuying 王秀英 7f3c9a"
    response = api.as_("admin", "PATCH", f"/api/v1/users/{uid}",
                       json={"display_name": marker, "version": user["version"]})
    assert response.status_code == 200, response.text

    writes = events(api, target_type="users", target_id=uid, action="users.update")
    assert len(writes) == 1
    w = writes[0]
    assert {"display_name", "version", "updated_at"} <= set(w["fields"])
    assert "password_hash" not in w["fields"] and "role" not in w["fields"]
    assert (w["actor_id"], w["actor_role"], w["outcome"]) == (world.users["admin"], "admin", "success")
    assert w["request_id"] == response.headers["X-Request-ID"]

    stored = repr(raw_rows(engine))
    assert marker not in stored and "Wang Xiuying" not in stored and "王秀英" not in stored


def test_reading_the_log_is_recorded(api: Api, world: World) -> None:
    api.as_("auditor", "GET", EVENTS, params={"action": "auth.*", "outcome": "success", "limit": 5})
    api.as_("auditor", "GET", VERIFY)
    reads = events(api, action="audit.read", actor_id=world.users["auditor"])
    first = reads[-1]
    assert first["actor_role"] == "auditor" and first["target_type"] == "audit_events"
    assert first["detail"]["filters"] == ["action", "outcome"] and first["detail"]["returned"] <= 5
    verifies = events(api, action="audit.verify")
    assert len(verifies) == 1 and verifies[0]["outcome"] == "success"
    assert verifies[0]["actor_id"] == world.users["auditor"]


# --- filters and paging -----------------------------------------------------------------------------

def test_filters(api: Api, world: World, activity: dict[str, Any]) -> None:
    everything = events(api)
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True)

    auth = events(api, action="auth.*")
    assert auth and all(e["action"].startswith("auth.") for e in auth)
    logins = events(api, action="auth.login")
    assert logins and all(e["action"] == "auth.login" for e in logins)
    assert len(logins) < len(auth)
    assert events(api, action="auth.log") == []  # exact unless it ends in '*'
    assert len(events(api, action="*")) >= len(everything)

    failures = events(api, outcome="failure")
    assert failures and all(e["outcome"] == "failure" for e in failures)

    admin = events(api, actor_id=world.users["admin"])
    assert admin and all(e["actor_id"] == world.users["admin"] for e in admin)

    patched = events(api, target_type="users", target_id=activity["patched"])
    assert [e["action"] for e in patched] == ["users.update", "users.create"]

    assert events(api, target_type="no_such_table") == []


def test_time_window(api: Api, activity: dict[str, Any]) -> None:
    everything = events(api)
    top = everything[0]["id"]  # pin the set: each read appends an audit.read row
    middle = everything[len(everything) // 2]
    at = datetime.fromisoformat(middle["at"])
    before = events(api, until=at.isoformat(), max_id=top)
    after = events(api, since=at.isoformat(), max_id=top)
    assert all(datetime.fromisoformat(e["at"]) < at for e in before)
    assert all(datetime.fromisoformat(e["at"]) >= at for e in after)
    assert middle["id"] in {e["id"] for e in after} and middle["id"] not in {e["id"] for e in before}
    assert len(before) + len(after) == len(everything)
    # The same instant written in Beijing time selects the same rows.
    beijing = at.astimezone(timezone(timedelta(hours=8))).isoformat()
    assert beijing.endswith("+08:00")
    assert events(api, since=beijing, max_id=top) == after
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert events(api, since=future) == []
    assert events(api, since=at.isoformat(), until=at.isoformat()) == []  # empty, not an error


def test_paging_newest_first_with_a_fixed_top(api: Api, activity: dict[str, Any]) -> None:
    first = api.as_("auditor", "GET", EVENTS, params={"limit": 3}).json()
    assert first["limit"] == 3 and len(first["items"]) == 3
    top = first["items"][0]["id"]
    seen = [e["id"] for e in first["items"]]
    offset = 3
    while True:
        page = api.as_("auditor", "GET", EVENTS, params={"limit": 3, "offset": offset, "max_id": top}).json()
        if not page["items"]:
            break
        assert page["total"] == first["total"]  # pinned: our own audit.read rows do not shift the pages
        seen += [e["id"] for e in page["items"]]
        offset += 3
    assert seen == list(range(top, top - len(seen), -1))
    assert len(seen) == first["total"]
    # Without the pin the log has grown by our reads in the meantime.
    assert api.as_("auditor", "GET", EVENTS, params={"limit": 1}).json()["total"] > first["total"]


def test_page_size_is_capped(api: Api) -> None:
    assert api.as_("auditor", "GET", EVENTS, params={"limit": 1000}).json()["limit"] == 200
    assert api.as_("auditor", "GET", EVENTS, params={"limit": 0}).status_code == 422


# --- validation -------------------------------------------------------------------------------------

BAD_FILTERS: list[tuple[dict[str, str], str]] = [
    ({"since": "yesterday"}, "datetime_format"),
    ({"since": "0"}, "datetime_format"),  # pydantic alone reads a number as seconds since 1970
    ({"until": "1700000000"}, "datetime_format"),
    ({"since": "２０２６-05-01T00:00:00Z"}, "datetime_format"),  # full-width digits
    ({"since": "2026-13-01T00:00:00Z"}, "validation_error"),
    ({"until": "2026-05-01T08:00:00"}, "timezone_required"),
    ({"since": "2026-05-01"}, "timezone_required"),
    ({"since": "9999-12-31T23:59:59-12:00"}, "datetime_out_of_range"),
    ({"until": "0001-01-01T00:00:00+14:00"}, "datetime_out_of_range"),
    ({"since": "2026-05-02T00:00:00Z", "until": "2026-05-01T00:00:00Z"}, "time_range_invalid"),
    ({"since": "2026-05-01T08:00:01+08:00", "until": "2026-05-01T00:00:00Z"}, "time_range_invalid"),
    ({"action": "auth.%"}, "validation_error"),
    ({"action": "a*b"}, "validation_error"),
    ({"action": "x" * 62}, "validation_error"),
    ({"outcome": "FAIL;"}, "validation_error"),
    ({"actor_id": "x" * 33}, "validation_error"),
    ({"target_id": "x" * 101}, "validation_error"),
    ({"request_id": "a b"}, "validation_error"),
    ({"max_id": "0"}, "validation_error"),
    ({"max_id": str(2**63)}, "validation_error"),
    ({"offset": "-1"}, "validation_error"),
]


def test_bad_filters_are_422_with_a_code(api: Api) -> None:
    for params, code in BAD_FILTERS:
        response = api.as_("auditor", "GET", EVENTS, params=params)
        assert response.status_code == 422, (params, response.text)
        assert _code(response) == code, (params, response.text)
        for value in params.values():  # never echoed back
            if len(value) > 3:
                assert value not in response.text, params


ODD_BUT_VALID: list[dict[str, str]] = [
    {"since": "1e20"}, {"since": "-99999999999999"}, {"until": "0001-01-01T00:00:00Z"},
    {"since": "9999-12-31T23:59:59.999999Z"}, {"action": "*"}, {"action": "auth_*"}, {"action": "a:b.c-d"},
    {"target_id": "名字"}, {"target_id": "%_\\'\""}, {"actor_id": "'; drop table audit_events; --"},
    {"max_id": str(2**63 - 1)}, {"offset": "1000000"}, {"limit": "1", "unknown": "x"},
]


def test_odd_input_never_fails(api: Api) -> None:
    for params in ODD_BUT_VALID:
        response = api.as_("auditor", "GET", EVENTS, params=params)
        assert response.status_code in (200, 422), (params, response.text)
    assert api.as_("auditor", "GET", VERIFY).json()["intact"] is True
