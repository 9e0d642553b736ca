"""Webhook administration: admins make endpoints for partner accounts; the secret is shown once; every refusal
has its code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

from app.core.config import Settings
from app.sharing.webhooks.sealing import SecretUnreadable, unseal
from app.sharing.webhooks.service import check_url
from tests.assertions import assert_error, ok
from tests.conftest import Api, World
from tests.db import audit_events, rows
from tests.sharing.webhooks.conftest import HOOKS
from tests.sharing.webhooks.receiver import Receiver


def test_an_endpoint_is_made_listed_changed_and_its_secret_rotated(
        api: Api, world: World, engine: Engine, police_hook: Callable[..., dict[str, Any]]) -> None:
    hook = police_hook(event_types=["resident.left", "resident.arrived"])
    assert hook["secret"].startswith("whsec_") and hook["partner_kind"] == "police"
    assert hook["event_types"] == ["resident.arrived", "resident.left"] and hook["hukou_prefix"] is None
    assert hook["area_prefix"] == next(s["path"] for s in world.streets
                                       if s["id"] == world.community("c1")["parent_id"])
    shown = ok(api.as_("admin", "GET", f"{HOOKS}/{hook['id']}"))
    assert "secret" not in shown and shown["url"] == hook["url"]
    assert [h["id"] for h in ok(api.as_("admin", "GET", HOOKS))["items"]] == [hook["id"]]
    changed = ok(api.as_("admin", "PATCH", f"{HOOKS}/{hook['id']}", json={
        "version": 1, "event_types": ["resident.moved"], "url": "https://station.example/hooks"}))
    assert (changed["version"], changed["event_types"], changed["url"]) == (
        2, ["resident.moved"], "https://station.example/hooks")
    rotated = ok(api.as_("admin", "POST", f"{HOOKS}/{hook['id']}/secret", json={"version": 2}))
    assert rotated["secret"] != hook["secret"] and rotated["version"] == 3
    assert_error(api.as_("admin", "POST", f"{HOOKS}/{hook['id']}/secret", json={"version": 2}), 409, "stale_version")
    assert_error(api.as_("admin", "PATCH", f"{HOOKS}/{hook['id']}", json={"version": 1, "active": False}), 409,
                 "stale_version")
    # Audited by field name, never the secret or the URL.
    assert len(audit_events(engine, "webhook_endpoints.create", hook["id"])) == 1
    assert "secret" in audit_events(engine, "webhook_endpoints.update", hook["id"])[-1]["fields"]
    text = str(rows(engine, "SELECT * FROM audit_events WHERE target_id = :t", t=hook["id"]))
    assert hook["secret"] not in text and rotated["secret"] not in text


def test_refusals(api: Api, world: World, receiver: Receiver, partner: Callable[[str], str]) -> None:
    police, city = partner("police"), partner("outflow_city")
    base = {"partner_user_id": police, "url": receiver.url, "event_types": ["resident.arrived"],
            "division_id": world.community("c1")["id"]}
    assert_error(api.as_("worker1", "POST", HOOKS, json=base), 403)
    assert_error(api.as_("worker1", "GET", HOOKS), 403)
    assert_error(api.as_("admin", "POST", HOOKS, json={**base, "partner_user_id": "0" * 32}), 404, "not_found")
    assert_error(api.as_("admin", "POST", HOOKS, json={**base, "partner_user_id": world.users["worker1"]}), 422,
                 "webhook_partner_role")
    assert_error(api.as_("admin", "POST", HOOKS, json={**base, "division_id": "0" * 32}), 404, "not_found")
    assert_error(api.as_("admin", "POST", HOOKS, json={**base, "division_id": None, "hukou_prefix": "4116"}), 422,
                 "webhook_coverage")
    assert_error(api.as_("admin", "POST", HOOKS, json={**base, "partner_user_id": city}), 422, "webhook_coverage")
    assert_error(api.as_("admin", "POST", HOOKS, json={**base, "url": "http://partner.example/hook"}), 422,
                 "webhook_url_refused")
    assert_error(api.as_("admin", "POST", HOOKS, json={**base, "event_types": ["resident.visited"]}), 422)
    assert_error(api.as_("admin", "POST", HOOKS, json={**base, "event_types": []}), 422)
    assert_error(api.as_("admin", "POST", HOOKS, json={**base, "url": "ftp://partner.example/"}), 422)
    assert_error(api.as_("admin", "GET", f"{HOOKS}/{'0' * 32}"), 404, "not_found")
    assert_error(api.as_("admin", "GET", f"{HOOKS}/{'0' * 32}/events"), 404, "not_found")
    hook = ok(api.as_("admin", "POST", HOOKS, json=base), 201)
    assert_error(api.as_("admin", "GET", f"{HOOKS}/{hook['id']}/events/{'0' * 32}/deliveries"), 404, "not_found")
    assert_error(api.as_("admin", "PATCH", f"{HOOKS}/{hook['id']}", json={"version": 1, "url": "http://x.example/"}),
                 422, "webhook_url_refused")


@pytest.mark.parametrize("url", ["https://user:pw@partner.example/hook", "http://partner.example/hook",
                                 "http://10.0.0.1/hook", "https:///nohost", "https://partner.example/a b",
                                 "javascript:alert(1)"])
def test_urls_refused(url: str) -> None:
    with pytest.raises(Exception, match="webhook_url_refused"):
        check_url(url)


@pytest.mark.parametrize("url", ["https://partner.example/hook", "http://127.0.0.1:8080/hook", "http://localhost/x"])
def test_urls_accepted_outside_production(url: str) -> None:
    assert check_url(url) == url


def test_the_secret_is_sealed_at_rest_and_production_needs_a_real_key(
        engine: Engine, police_hook: Callable[..., dict[str, Any]]) -> None:
    hook = police_hook()
    [stored] = rows(engine, "SELECT id, secret FROM webhook_endpoints")
    assert hook["secret"] not in stored["secret"] and stored["secret"].startswith("dev-1$")
    assert unseal(stored["secret"], stored["id"]) == hook["secret"]
    with pytest.raises(SecretUnreadable):  # moved to another row, it does not open
        unseal(stored["secret"], "0" * 32)
    with pytest.raises(SecretUnreadable):
        unseal("other$AAAA$BBBB", stored["id"])
    production = {"app_env": "production", "database_url": "postgresql+psycopg://u:p@h/db"}
    with pytest.raises(RuntimeError, match="WEBHOOK_SECRET_KEYS"):
        Settings(**production).check_production()  # type: ignore[arg-type]
