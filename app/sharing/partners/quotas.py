"""Quotas of the partner routes (docs/sharing.md, "Quotas"): requests per caller, kind of route and fixed window,
counted where every server process sees the same count, and the enumeration alert.

- **Kinds**: `lookup` (a police look-up), `feed` (the police feed, the outflow roster and change feed), `upload`
  (police registrations), `assistance` (an outflow city's assistance requests), `landlord_read` and
  `landlord_write` (a landlord's GET and POST routes). Limits and windows come from settings
  (`PARTNER_<KIND>_LIMIT` / `…_WINDOW_SECONDS`, `LANDLORD_READ_…`, `LANDLORD_WRITE_…`).
- **Where**: in Redis when `REDIS_URL` is set (one Lua script: INCR, and PEXPIRE when the key is new), else in
  the database (`partner_rate_limits`, one `INSERT … ON CONFLICT DO UPDATE … RETURNING` statement: atomic on
  SQLite and PostgreSQL, no lost update). Redis configured but not answering: the database counts instead for
  `REDIS_RETRY_SECONDS`, then Redis is tried again; one warning is logged per outage.
- **When**: `quota(kind)` is a dependency of every partner route, resolved before the route's unit of work opens.
  It names the caller by the verified token's subject (no database read), so the database store's short write
  runs in a unit of work of its own and holds neither a lock nor a connection while the route works.
- **Over the limit**: 429 `rate_limited` with `Retry-After` (and `X-RateLimit-Limit` / `X-RateLimit-Remaining`
  on every answer). Refusals are not audited one by one (a flood would flood the audit log): the first refusal
  of a window, or `PARTNER_LOOKUP_MISS_ALERT` look-ups that found nobody in a look-up window, writes one
  `sharing.enumeration_alert` event per caller, kind and window (client id, kind, counts, window: no personal
  data).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from fastapi import Depends, Request, Response
from sqlalchemy import case, literal
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.auth.deps import Claims
from app.core.config import Settings
from app.core.deps import SAFE_METHODS, SettingsDep, in_unit_of_work
from app.core.errors import TooManyRequests
from app.core.types import UTCDateTime, utcnow
from app.ledger import audit
from app.sharing.partners.models import PartnerRateLimit

log = logging.getLogger(__name__)

LOOKUP, FEED, UPLOAD, ASSISTANCE = "lookup", "feed", "upload", "assistance"
LANDLORD_READ, LANDLORD_WRITE = "landlord_read", "landlord_write"
KINDS = (LOOKUP, FEED, UPLOAD, ASSISTANCE, LANDLORD_READ, LANDLORD_WRITE)
LOOKUP_MISS = "lookup_miss"  # a counter only: look-ups that found nobody in the jurisdiction
QUOTA_KIND = "__quota_kind__"  # marks the dependency (tests check every partner route has one)
REDIS_PREFIX = "migrant:quota:"
REDIS_RETRY_SECONDS = 30.0


QUOTA_RESPONSES: dict[int | str, dict[str, Any]] = {
    429: {"description": "`rate_limited`: over the caller's quota of this kind of route; wait for Retry-After "
                         "(docs/sharing.md, \"Quotas\")"}}


class RateLimited(TooManyRequests):
    code = "rate_limited"
    en = "Too many requests from this client; wait for Retry-After."
    zh = "该客户端请求过于频繁，请按 Retry-After 等待后重试。"
    keep_changes = True  # the count (and the alert) stand
    audit_outcome = None  # type: ignore[assignment]  # one alert per window, not a row per refusal


@dataclass(frozen=True)
class Quota:
    kind: str
    limit: int
    window_seconds: int


def quota_of(settings: Settings, kind: str) -> Quota:
    prefix = "landlord" if kind.startswith("landlord_") else "partner"
    name = kind.removeprefix("landlord_") if prefix == "landlord" else kind
    return Quota(kind, getattr(settings, f"{prefix}_{name}_limit"),
                 getattr(settings, f"{prefix}_{name}_window_seconds"))


@dataclass(frozen=True)
class Hit:
    """A key's count in its current window, this request included, and the seconds until the window ends."""

    count: int
    reset_in: float


class Store(Protocol):
    def hit(self, key: str, window_seconds: int) -> Hit: ...


# --- the database store ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DatabaseStore:
    """The counter rows of `partner_rate_limits`, in `session`'s (write) transaction."""

    session: Session

    def hit(self, key: str, window_seconds: int) -> Hit:
        now = utcnow()
        table = PartnerRateLimit.__table__  # type: ignore[attr-defined]
        insert = pg_insert if self.session.get_bind().dialect.name == "postgresql" else sqlite_insert
        stale = table.c.window_started_at <= now - timedelta(seconds=window_seconds)
        statement = insert(table).values(key=key, count=1, window_started_at=now).on_conflict_do_update(
            index_elements=["key"],
            set_={"count": case((stale, 1), else_=table.c.count + 1),
                  "window_started_at": case((stale, literal(now, UTCDateTime())), else_=table.c.window_started_at)},
        ).returning(table.c.count, table.c.window_started_at)
        count, began = self.session.execute(statement).one()
        return Hit(int(count), (began + timedelta(seconds=window_seconds) - now).total_seconds())


# --- the Redis store ---------------------------------------------------------------------------------------------

# Atomic: the count and its expiry are set together (a key never outlives its window without one).
HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


class RedisStore:
    """INCR + PEXPIRE in one Lua script per hit. `hit` raises `RedisUnavailable` when Redis does not answer."""

    def __init__(self, url: str) -> None:
        import redis  # imported only when configured

        self.url = url
        self.client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        self.script = self.client.register_script(HIT_SCRIPT)
        self.errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)

    def hit(self, key: str, window_seconds: int) -> Hit:
        try:
            count, ttl = self.script(keys=[REDIS_PREFIX + key], args=[window_seconds * 1000])
        except self.errors as exc:
            raise RedisUnavailable(type(exc).__name__) from exc
        return Hit(int(count), int(ttl) / 1000)


class RedisUnavailable(Exception):
    pass


class _Redis:
    """The configured Redis store, and whether it is resting after a failure (the database counts meanwhile)."""

    def __init__(self) -> None:
        self.store: RedisStore | None = None
        self.down_until = 0.0
        self.lock = threading.Lock()

    def get(self, settings: Settings) -> RedisStore | None:
        url = settings.redis_url
        if not url or time.monotonic() < self.down_until:
            return None
        with self.lock:
            if self.store is None or self.store.url != url:
                self.store = RedisStore(url)
                self.down_until = 0.0
            return self.store

    def failed(self, reason: str) -> None:
        with self.lock:
            if self.down_until == 0.0:  # once per outage
                log.warning("quota store: Redis is not answering (%s); counting in the database, retrying in "
                            "%.0f s", reason, REDIS_RETRY_SECONDS)
            self.down_until = time.monotonic() + REDIS_RETRY_SECONDS

    def answered(self) -> None:
        if self.down_until:
            with self.lock:
                if self.down_until:
                    log.warning("quota store: Redis answers again; counting there")
                self.down_until = 0.0


redis_state = _Redis()


def _redis_hit(settings: Settings, key: str, window_seconds: int) -> Hit | None:
    """A hit in Redis, or None: not configured, or not answering (the caller counts in the database)."""
    store = redis_state.get(settings)
    if store is None:
        return None
    try:
        hit = store.hit(key, window_seconds)
    except RedisUnavailable as exc:
        redis_state.failed(str(exc))
        return None
    redis_state.answered()
    return hit


def hit(session: Session, settings: Settings, key: str, window_seconds: int) -> Hit:
    """One hit on `key`: in Redis when configured and answering, else in `session`'s write transaction."""
    found = _redis_hit(settings, key, window_seconds)
    return found if found is not None else DatabaseStore(session).hit(key, window_seconds)


# --- the alert ----------------------------------------------------------------------------------------------------

def alert(session: Session, settings: Settings, user_id: str, quota: Quota, reason: str, count: int) -> None:
    """One `sharing.enumeration_alert` per caller, kind and window, whatever set it off (a refusal, misses)."""
    if hit(session, settings, f"alert:{quota.kind}:{user_id}", quota.window_seconds).count != 1:
        return
    audit.record(session, "sharing.enumeration_alert", target_type="partner", target_id=user_id,
                 outcome="denied", status_code=429 if reason == "limit" else None,
                 detail={"kind": quota.kind, "reason": reason, "count": count, "limit": quota.limit,
                         "miss_alert": settings.partner_lookup_miss_alert if quota.kind == LOOKUP else None,
                         "window_seconds": quota.window_seconds})


def record_miss(session: Session, settings: Settings, user_id: str) -> None:
    """A look-up that found nobody in the jurisdiction (in the look-up's write transaction): the
    PARTNER_LOOKUP_MISS_ALERT-th of a window raises the alert."""
    quota = quota_of(settings, LOOKUP)
    misses = hit(session, settings, f"{LOOKUP_MISS}:{user_id}", quota.window_seconds).count
    if misses == settings.partner_lookup_miss_alert:
        alert(session, settings, user_id, quota, "misses", misses)


# --- the dependency -------------------------------------------------------------------------------------------------

def _refusal(quota: Quota, found: Hit) -> RateLimited:
    retry = max(1, int(found.reset_in + 0.999))
    return RateLimited({"retry_after_seconds": retry},
                       headers={"Retry-After": str(retry), "X-RateLimit-Limit": str(quota.limit),
                                "X-RateLimit-Remaining": "0"})


def _charge_db(session: Session, settings: Settings, user_id: str, quota: Quota) -> Hit:
    found = DatabaseStore(session).hit(f"{quota.kind}:{user_id}", quota.window_seconds)
    if found.count > quota.limit:
        if found.count == quota.limit + 1:
            alert(session, settings, user_id, quota, "limit", found.count)
        raise _refusal(quota, found)
    return found


async def enforce(request: Request, settings: Settings, user_id: str, kind: str) -> Hit:
    """Count one request of `kind` by `user_id`; 429 `rate_limited` over the limit."""
    quota = quota_of(settings, kind)
    found = None
    if settings.redis_url:
        found = await run_in_threadpool(_redis_hit, settings, f"{kind}:{user_id}", quota.window_seconds)
    if found is None:
        return await in_unit_of_work(request, lambda s: _charge_db(s, settings, user_id, quota))
    if found.count > quota.limit:
        if found.count == quota.limit + 1:
            await in_unit_of_work(request, lambda s: alert(s, settings, user_id, quota, "limit", found.count))
        raise _refusal(quota, found)
    return found


def _marked(kind: str, charge: Callable[..., Any]) -> Any:
    setattr(charge, QUOTA_KIND, kind)
    return Depends(charge)


def quota(kind: str) -> Any:
    """A partner route's quota (`dependencies=[quota(FEED)]`): resolved before the route's unit of work."""
    assert kind in KINDS, kind

    async def charge(request: Request, response: Response, claims: Claims, settings: SettingsDep) -> None:
        found = await enforce(request, settings, str(claims["sub"]), kind)
        _headers(response, quota_of(settings, kind), found)

    return _marked(kind, charge)


def landlord_quota() -> Any:
    """A landlord's routes: GET counts as `landlord_read`, anything else as `landlord_write`."""

    async def charge(request: Request, response: Response, claims: Claims, settings: SettingsDep) -> None:
        kind = LANDLORD_READ if request.method in SAFE_METHODS else LANDLORD_WRITE
        found = await enforce(request, settings, str(claims["sub"]), kind)
        _headers(response, quota_of(settings, kind), found)

    return _marked(f"{LANDLORD_READ},{LANDLORD_WRITE}", charge)


def _headers(response: Response, q: Quota, found: Hit) -> None:
    response.headers["X-RateLimit-Limit"] = str(q.limit)
    response.headers["X-RateLimit-Remaining"] = str(max(0, q.limit - found.count))
