from __future__ import annotations

from tests.conftest import Api, World


def test_login_and_me(api: Api, world: World) -> None:
    response = api.as_("worker1", "GET", "/api/v1/auth/me")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["role"] == "worker"
    assert [d["id"] for d in body["scope"]] == [world.community("c1")["id"]]
    assert response.headers["cache-control"] == "no-store"


def test_healthz(api: Api) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
