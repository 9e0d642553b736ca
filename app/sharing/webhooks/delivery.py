"""The delivery worker (`migrant outbox-run`): claim due events, POST them signed, settle each attempt.

One round: a short write transaction claims a batch (app.ledger.outbox.service.claim) and reads the endpoints'
URLs and secrets; the connection goes back to the pool; the events are sent one by one over one keep-alive HTTP
client with short timeouts; a second short write transaction records every attempt, marks the delivered events
and enters each delivered record in the resident's disclosure ledger (`disclose`, with the field groups the body
names), in the transaction that marks it delivered, so a record is entered once however often it was sent.

At least once: an event is marked delivered only after a 2xx. A worker killed between sending and settling
leaves its events leased; they come due again when the lease ends and go out with the same id and body, and the
receiver deduplicates on the id. Nothing is lost: nothing leaves the outbox except by a 2xx (or a dead-letter).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import orjson
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from app.core.config import get_settings
from app.core.db import unit_of_work
from app.core.types import utcnow
from app.ledger.outbox import service as outbox
from app.ledger.outbox.models import OutboxEvent
from app.sharing.ledger import disclose
from app.sharing.profiles.service import current_profile
from app.sharing.webhooks import signing
from app.sharing.webhooks.models import WebhookEndpoint
from app.sharing.webhooks.producer import pushed_groups
from app.sharing.webhooks.sealing import unseal

log = logging.getLogger("app.webhooks")


@dataclass(frozen=True)
class Target:
    url: str
    secret: str
    partner_kind: str
    partner_id: str


def _claim(session: Session, policy: outbox.Policy) -> tuple[str, list[OutboxEvent], dict[str, Target]]:
    token, events = outbox.claim(session, policy)
    ids = {e.endpoint_id for e in events}
    targets = {e.id: Target(e.url, unseal(e.secret, e.id), e.partner_kind, e.partner_user_id) for e in session.execute(
        select(WebhookEndpoint).where(col(WebhookEndpoint.id).in_(ids), col(WebhookEndpoint.active))).scalars()
    } if ids else {}
    return token, events, targets


def send(client: httpx.Client, event: OutboxEvent, target: Target | None) -> outbox.Outcome:
    """One attempt, holding no database connection. Errors are codes; nothing from the body is logged."""
    started, clock = utcnow(), time.perf_counter()
    status: int | None = None
    error: str | None = None
    if target is None:
        error = "endpoint_gone"  # deleted or deactivated since the event was queued
    else:
        body = event.body.encode()
        try:
            status = client.post(target.url, content=body,
                                 headers=signing.headers(target.secret, event.id, body)).status_code
        except httpx.TimeoutException:
            error = "timeout"
        except httpx.ConnectError:
            error = "connect_error"
        except httpx.HTTPError:
            error = "transport_error"
        except Exception:  # any other failure of one attempt is that attempt's, never the whole round's
            error = "send_error"
        if status is not None and not 200 <= status < 300:
            error = f"http_{status // 100}xx"
    duration = int((time.perf_counter() - clock) * 1000)
    return outbox.Outcome(event.id, status, error, duration, started)


def _settle(session: Session, policy: outbox.Policy, token: str, events: Sequence[OutboxEvent],
            targets: dict[str, Target], outcomes: Sequence[outbox.Outcome]) -> int:
    delivered = set(outbox.settle(session, policy, token, events, outcomes))
    by_partner: defaultdict[tuple[str, str, tuple[str, ...] | None], list[tuple[str, str]]] = defaultdict(list)
    for event in events:
        target = targets.get(event.endpoint_id)
        if event.id in delivered and target and event.subject_type == "resident" and event.subject_id:
            key = (target.partner_kind, target.partner_id, _groups_of(event))
            by_partner[key].append((event.subject_id, event.district_code or ""))
    for (kind, partner_id, groups), residents in by_partner.items():
        # The groups the body shows (named in it when it was built); the legal basis of the profile in force when
        # the event went out (an admin's edit in between is on record in the profile's versions).
        profile = current_profile(session, kind)
        disclose(session, partner_kind=kind, partner_id=partner_id, residents=residents,
                 field_groups=groups if groups is not None else pushed_groups(profile),
                 legal_basis=profile.legal_basis, action="sharing.push")
    return len(delivered)


def _groups_of(event: OutboxEvent) -> tuple[str, ...] | None:
    """The field groups the event's body names (None: a body queued before they were named)."""
    named = orjson.loads(event.body).get("field_groups")
    return tuple(named) if isinstance(named, list) else None


def deliver_due(client: httpx.Client, *, engine: Engine | None = None, policy: outbox.Policy | None = None) -> int:
    """One round; returns how many events it claimed (0: nothing is due)."""
    policy = policy or outbox.Policy.from_settings()
    with unit_of_work(engine=engine) as session:
        token, events, targets = _claim(session, policy)
    if not events:
        return 0
    outcomes = [send(client, event, targets.get(event.endpoint_id)) for event in events]
    with unit_of_work(engine=engine) as session:
        delivered = _settle(session, policy, token, events, targets, outcomes)
    log.info("outbox round: %d claimed, %d delivered", len(events), delivered)
    return len(events)


def http_client() -> httpx.Client:
    timeout = get_settings().outbox_timeout_seconds
    return httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)), follow_redirects=False,
                        trust_env=False, headers={"User-Agent": "migrant-services-webhooks/1"})


def run(*, engine: Engine | None = None, policy: outbox.Policy | None = None, once: bool = False,
        poll_seconds: float = 1.0, stop: threading.Event | None = None) -> int:
    """Deliver until stopped (`once`: until nothing is due); returns how many events were claimed."""
    stop = stop or threading.Event()
    total, failures = 0, 0
    with http_client() as client:
        while not stop.is_set():
            try:
                claimed = deliver_due(client, engine=engine, policy=policy)
            except SQLAlchemyError as exc:  # the database is away: wait and try again (a leased batch comes back)
                if once:
                    raise
                failures += 1
                log.warning("outbox round failed (%s); retrying", type(exc).__name__)
                stop.wait(min(poll_seconds * 2 ** min(failures, 6), 60))
                continue
            failures = 0
            total += claimed
            if claimed == 0:
                if once:
                    break
                stop.wait(poll_seconds)
    return total


def purge(*, engine: Engine | None = None) -> int:
    with unit_of_work(engine=engine) as session:
        return outbox.purge(session, keep_days=get_settings().outbox_keep_days)
