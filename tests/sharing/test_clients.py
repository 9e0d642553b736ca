"""Machine clients (police stations, outflow cities): admin-made, OAuth 2.0 client credentials (RFC 6749 §4.4)
with the RFC's error shape, secrets rotated without downtime, disabled at once."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from app.core import security
from app.core.config import get_settings
from app.core.db import get_engine
from app.core.errors import ServiceBusy
from app.sharing.partners.oauth import service as oauth
from tests.assertions import assert_error, ok
from tests.conftest import Api, World
from tests.db import audit_events, rows
from tests.sharing.partner_helpers import TOKEN_URL, V1, Client, bearer, make_client, request_token

FEED = V1 + "/partner/police/feed"


def police(api: Api, world: World, client_id: str = "station-1") -> Client:
    return make_client(api, "police", client_id, division_ids=[world.community("c1")["parent_id"]])


def oauth_error(response: Any, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_description"} and body["error"] == error, body
    assert response.headers["cache-control"] == "no-store"
    return dict(body)


def test_client_credentials_issue_a_short_lived_token(api: Api, world: World, engine: Engine) -> None:
    client = police(api, world)
    response = request_token(api, client)
    body = ok(response)
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600
    assert body["scope"] == "police:feed police:lookup police:upload"
    assert response.headers["cache-control"] == "no-store" and response.headers["pragma"] == "no-cache"
    feed = api.client.post(FEED, json={}, headers={"Authorization": "Bearer " + body["access_token"]})
    assert feed.status_code == 200, feed.text
    assert rows(engine, "SELECT secret_hash FROM partner_secrets")[0]["secret_hash"].startswith("$argon2")
    assert client.secret not in str(rows(engine, "SELECT * FROM partner_secrets"))
    event = audit_events(engine, "sharing.token")[-1]
    assert event["outcome"] == "success" and client.secret not in str(event)


def test_http_basic_works_and_one_method_only(api: Api, world: World) -> None:
    client = police(api, world)
    form = {"grant_type": "client_credentials"}
    ok(api.client.post(TOKEN_URL, data=form, headers=client.basic()))
    both = api.client.post(TOKEN_URL, data={**form, "client_id": client.client_id}, headers=client.basic())
    oauth_error(both, 400, "invalid_request")
    bad = api.client.post(TOKEN_URL, data=form, headers={"Authorization": "Basic !!notbase64"})
    oauth_error(bad, 401, "invalid_client")


@pytest.mark.parametrize(("form", "status", "error"), [
    ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ({"grant_type": ""}, 400, "invalid_request"),
    ({"scope": "police:lookup outflow:feed"}, 400, "invalid_scope"),
    ({"client_secret": "nope.nope"}, 401, "invalid_client"),
    ({"client_secret": "no-dot"}, 401, "invalid_client"),
    ({"client_id": "nobody"}, 401, "invalid_client"),
    ({"client_secret": ""}, 401, "invalid_client"),
    ({"client_id": "x" * 65}, 400, "invalid_request"),
])
def test_token_errors_follow_the_rfc(api: Api, world: World, form: dict[str, str], status: int,
                                     error: str) -> None:
    client = police(api, world)
    response = request_token(api, client, **form)
    oauth_error(response, status, error)
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize("send", [
    {"json": {"grant_type": "client_credentials"}},
    {"content": b"grant_type=client_credentials&grant_type=client_credentials",
     "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
    {"content": b"\xff\xfe", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
])
def test_malformed_token_requests_are_invalid_request(api: Api, send: dict[str, Any]) -> None:
    oauth_error(api.client.post(TOKEN_URL, **send), 400, "invalid_request")


def test_a_narrower_scope_is_enforced(api: Api, world: World) -> None:
    client = police(api, world)
    headers = bearer(api, client, scope="police:lookup")
    assert_error(api.client.post(FEED, json={}, headers=headers), 403, "insufficient_scope")


def test_password_sign_in_is_refused_for_machine_clients(api: Api, world: World, engine: Engine) -> None:
    client = police(api, world)
    response = api.client.post(V1 + "/auth/login", json={"username": client.client_id, "password": client.secret})
    assert_error(response, 401, "invalid_credentials")
    assert "machine_client" in str(audit_events(engine, "auth.login")[-1]["detail"])


def test_failures_lock_the_client_id(api: Api, world: World) -> None:
    client = police(api, world)
    for _ in range(get_settings().login_max_failures):
        oauth_error(request_token(api, client, client_secret="wrong.wrong"), 401, "invalid_client")
    locked = request_token(api, client)
    oauth_error(locked, 429, "temporarily_unavailable")
    assert int(locked.headers["retry-after"]) > 0


def test_rotation_has_no_downtime(api: Api, world: World) -> None:
    old = police(api, world)
    url = f"{V1}/sharing/clients/{old.user_id}/secrets"
    new = ok(api.as_("admin", "POST", url), 201)
    rotated = Client(old.user_id, old.client_id, new["client_secret"], old.version)
    ok(request_token(api, old))
    ok(request_token(api, rotated))
    assert_error(api.as_("admin", "POST", url), 409, "too_many_secrets")
    listed = ok(api.as_("admin", "GET", f"{V1}/sharing/clients/{old.user_id}"))
    assert len(listed["secrets"]) == 2 and "client_secret" not in str(listed)
    old_id = old.secret.split(".")[0]
    assert api.as_("admin", "POST", f"{url}/{old_id}/retire").status_code == 204
    oauth_error(request_token(api, old), 401, "invalid_client")
    ok(request_token(api, rotated))
    assert_error(api.as_("admin", "POST", f"{url}/{'0' * 32}/retire"), 404, "not_found")


def test_disabling_ends_tokens_at_once(api: Api, world: World) -> None:
    client = police(api, world)
    headers = bearer(api, client)
    ok(api.as_("admin", "POST", f"{V1}/sharing/clients/{client.user_id}/disable"))
    assert_error(api.client.post(FEED, json={}, headers=headers), 401, "session_expired")
    oauth_error(request_token(api, client), 401, "invalid_client")
    ok(api.as_("admin", "POST", f"{V1}/sharing/clients/{client.user_id}/enable"))
    ok(request_token(api, client))


def test_jurisdiction_rules(api: Api, world: World) -> None:
    c1 = world.community("c1")
    station = make_client(api, "police", "station-2")
    city = make_client(api, "outflow_city", "zhoukou", hukou_prefix="4116")
    url = f"{V1}/sharing/clients/{station.user_id}/jurisdiction"
    grid = world.grids[c1["id"]][0]["id"]
    assert_error(api.as_("admin", "PUT", url, json={"version": 1, "hukou_prefix": "4116"}), 422,
                 "jurisdiction_invalid")
    assert_error(api.as_("admin", "PUT", url, json={"version": 1, "division_ids": [grid]}), 422,
                 "jurisdiction_invalid")
    assert_error(api.as_("admin", "PUT", url, json={"version": 1, "division_ids": ["0" * 32]}), 404, "not_found")
    assert_error(api.as_("admin", "PUT", url, json={"version": 9, "division_ids": [c1["id"]]}), 409, "stale_version")
    done = ok(api.as_("admin", "PUT", url, json={"version": 1, "division_ids": [c1["id"], c1["parent_id"]]}))
    assert sorted(a["division_id"] for a in done["areas"]) == sorted([c1["id"], c1["parent_id"]])
    again = ok(api.as_("admin", "PUT", url, json={"version": done["version"], "division_ids": [c1["id"]]}))
    assert [a["division_id"] for a in again["areas"]] == [c1["id"]] and again["version"] == done["version"] + 1
    city_url = f"{V1}/sharing/clients/{city.user_id}/jurisdiction"
    assert_error(api.as_("admin", "PUT", city_url, json={"version": city.version, "division_ids": [c1["id"]]}), 422,
                 "jurisdiction_invalid")
    assert ok(api.as_("admin", "GET", f"{V1}/sharing/clients/{city.user_id}"))["hukou_prefix"] == "4116"
    assert {c["client_id"] for c in ok(api.as_("admin", "GET", V1 + "/sharing/clients"))} == {"station-2", "zhoukou"}


def test_client_administration_is_for_admins(api: Api, world: World) -> None:
    client = police(api, world)
    assert_error(api.as_("worker1", "GET", V1 + "/sharing/clients"), 403, "forbidden")
    assert_error(api.as_("sup_district", "POST", f"{V1}/sharing/clients/{client.user_id}/secrets"), 403, "forbidden")
    taken = api.as_("admin", "POST", V1 + "/sharing/clients",
                    json={"client_id": "worker1", "display_name": "x", "kind": "police"})
    assert_error(taken, 409, "username_taken")
    assert_error(api.as_("admin", "GET", f"{V1}/sharing/clients/{world.users['worker1']}"), 404, "not_found")


def test_staff_cannot_call_partner_routes(api: Api) -> None:
    assert_error(api.as_("admin", "POST", FEED, json={}), 403, "forbidden")


@pytest.mark.parametrize("good", [True, False])
def test_the_secret_check_holds_no_connection(api: Api, world: World, monkeypatch: pytest.MonkeyPatch,
                                              good: bool) -> None:
    """As a sign-in's (docs/CONVENTIONS.md, "Slow CPU work"): no pooled connection is held while argon2 runs."""
    client = police(api, world)
    engine = get_engine()
    seen: list[int] = []
    verify = security.verify_and_update_password

    def watched(plain: str, stored: str | None) -> tuple[bool, str | None]:
        seen.append(engine.pool.checkedout())  # type: ignore[attr-defined]
        return verify(plain, stored)

    monkeypatch.setattr(security, "verify_and_update_password", watched)
    response = request_token(api, client, **({} if good else {"client_secret": client.secret + "x"}))
    assert response.status_code == (200 if good else 401)
    assert seen == [0]


def test_a_busy_database_is_a_503_in_the_rfc_shape(api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    client = police(api, world)

    def busy(*_: Any) -> None:
        raise ServiceBusy()

    monkeypatch.setattr(oauth, "token_start", busy)
    response = request_token(api, client)
    oauth_error(response, 503, "temporarily_unavailable")
    assert response.headers["retry-after"]


def test_a_machine_client_is_not_a_staff_account(api: Api, world: World) -> None:
    """The staff account routes can neither retarget, reset nor disable a machine client: made into a worker and
    given a password, it would be a staff sign-in made from a partner's credentials."""
    client = make_client(api, "police", "station-staff-guard", division_ids=[world.community("c1")["id"]])
    users = "/api/v1/users"
    version = ok(api.as_("admin", "GET", f"{users}/{client.user_id}"))["version"]
    assert_error(api.as_("admin", "PATCH", f"{users}/{client.user_id}", json={"version": version, "role": "worker"}),
                 403, "partner_account")
    assert_error(api.as_("admin", "PATCH", f"{users}/{client.user_id}", json={"version": version, "active": False}),
                 403, "partner_account")
    assert_error(api.as_("admin", "POST", f"{users}/{client.user_id}/reset-password",
                         json={"temporary_password": "Temporary-Pass-2026!"}), 403, "partner_account")
    assert ok(request_token(api, client))["access_token"]  # nothing was changed
