"""Fixtures of the webhook tests: a receiver, partner accounts, endpoints made through the admin API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from app.auth.models import User
from app.core.db import unit_of_work
from app.ledger.outbox.service import Policy
from tests.conftest import Api, World
from tests.sharing.partner_helpers import make_client
from tests.sharing.webhooks.receiver import Receiver

HOOKS = "/api/v1/admin/webhooks"
# No waiting between tries (a failed event is due again at once), three tries before the dead-letter.
FAST = Policy(max_attempts=3, backoff_seconds=0, backoff_max_seconds=0, lease_seconds=60, batch_size=50)


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture()
def partner(api: Api, world: World, engine: Engine) -> Callable[..., str]:
    """Make a partner account of the role; returns its id. A police station or an outflow city is a machine client
    made through the admin API, with its jurisdiction (default: c1's street; the 户籍地 prefix 41); any other role
    a plain account."""
    made = 0

    def make(role: str, *, division_ids: list[str] | None = None, hukou_prefix: str | None = None) -> str:
        nonlocal made
        made += 1
        if role == "police":
            return make_client(api, role, f"{role}-{made}",
                               division_ids=division_ids or [world.community("c1")["parent_id"]]).user_id
        if role == "outflow_city":
            return make_client(api, role, f"{role}-{made}", hukou_prefix=hukou_prefix or "41").user_id
        with unit_of_work(engine=engine) as session:
            user = User(username=f"{role}-{made}", display_name=f"{role} {made}", role=role, password_hash="!")
            session.add(user)
            session.flush()
            return user.id

    return make


@pytest.fixture()
def police_hook(api: Api, world: World, receiver: Receiver,
                partner: Callable[[str], str]) -> Callable[..., dict[str, Any]]:
    """A police endpoint covering c1's street (by default), pointed at the receiver, which gets its secret."""

    def make(**over: Any) -> dict[str, Any]:
        body = {"partner_user_id": partner("police"), "url": receiver.url,
                "event_types": ["resident.arrived", "resident.moved", "resident.left"],
                "division_id": world.community("c1")["parent_id"], **over}
        response = api.as_("admin", "POST", HOOKS, json=body)
        assert response.status_code == 201, response.text
        hook = dict(response.json())
        receiver.secret = hook["secret"]
        return hook

    return make
