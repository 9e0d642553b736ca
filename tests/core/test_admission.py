"""The admission gate (`db.admitted`): never more units of work than connections. A free place is taken at once;
with none free a request waits in line, gets the place a finishing request gives back, and past
DB_QUEUE_SECONDS is refused with `service_busy` (503 with Retry-After through the app's error handler)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine

from app.core.config import get_settings
from app.core.db import admitted, capacity
from app.core.errors import ServiceBusy


def test_a_full_gate_queues_then_refuses(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "db_queue_seconds", 0.2)
    places = capacity(engine)

    async def scenario() -> tuple[str, str]:
        held = [admitted(engine) for _ in range(places)]
        for gate in held:
            await gate.__aenter__()  # every place taken, each at once
        with pytest.raises(ServiceBusy) as refused:
            async with admitted(engine):
                pass
        waiting = asyncio.ensure_future(_enter(engine))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # in line
        await held.pop().__aexit__(None, None, None)  # a request finishes: its place goes to the one in line
        got_in = await asyncio.wait_for(waiting, 1)
        for gate in held:
            await gate.__aexit__(None, None, None)
        async with admitted(engine):  # all places free again: taken at once
            pass
        busy = refused.value
        assert (busy.status, busy.code, busy.headers) == (503, "service_busy", {"Retry-After": "2"})
        return str(busy.details), got_in

    details, got_in = asyncio.run(scenario())
    assert "queue" in details and got_in == "in"


async def _enter(engine: Engine) -> str:
    async with admitted(engine):
        return "in"
