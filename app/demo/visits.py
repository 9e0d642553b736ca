"""Demo visits: about three months of a worker's field history, the services handed out on them, supervisor
reviews, and the open task list (this month's key-person visits, new arrivals).

Generated from what is already in the database (residents, dwellings, staff accounts, the service catalogue),
so it runs after the people and the accounts are written (`seed_demo` calls it when it creates accounts; any
caller may call `seed_visits` later, e.g. after creating its own staff):
- only residents whose grid or community has a worker account are visited, by that worker (several workers
  share the residents); key persons about once a month (mostly before the due day), new arrivals within a
  few days of arriving, a share of everybody else once in the window;
- mostly in person, with a WGS-84 check-in near the dwelling (small jitter; a few outside the radius, with
  poor accuracy, a mock location, a stale fix or no coordinates, and a few sent days later from an offline
  phone), so a supervisor's review queue has something in it; some phone calls;
- flags and distances are computed with the same settings and distance function the server uses;
- deliveries come from the `service_items` table (the catalogue's current version), chosen by who is
  visited (the reproductive-health items for women of 15–49), each item at most once per visit;
- older visits without flags are mostly approved by the area's supervisor (with a `visit_reviews` row);
- tasks: one `key_person_monthly` per key person for this month (done when a met visit this month exists,
  else open: due or overdue after the due day), one `new_arrival_visit` per resident who arrived in the
  last weeks (done by a met in-person visit). (resident, kind, period) stays unique.

Bulk statements (no per-row audit events): one `demo.visits` audit event records the counts. Deterministic for
a given seed, date and database content.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from app.auth.models import User, UserScope
from app.catalog.models import CatalogVersion, ServiceItem
from app.core.actor import Role
from app.core.bulk import BulkWriter, table_of
from app.core.config import get_settings
from app.core.types import CITY_TZ, city_date, city_today, utcnow
from app.cycle.models import Task, TaskKind, TaskState
from app.ledger import audit
from app.people.models import Resident, ResidentStatus
from app.places.models import Division, Dwelling, Level
from app.visits.checkin import CheckinFacts, assess
from app.visits.geo import EARTH_RADIUS_M
from app.visits.models import ReviewState, ServiceDelivery, Visit, VisitMode, VisitOutcome, VisitPurpose, VisitReview

WINDOW_DAYS = 90  # history length
NEW_ARRIVAL_DAYS = 45  # residents who arrived this recently get a new-arrival task
ROUTINE_SHARE = 0.2  # share of other residents visited once in the window
VISIT_COLUMNS = ("id", "resident_id", "worker_id", "community_id", "dwelling_id", "area_path", "district_code",
                 "mode", "purpose", "outcome", "started_at", "ended_at", "received_at", "notes", "catalog_version",
                 "lat", "lng", "coord_system", "accuracy_m", "provider", "mock_location", "fix_time", "distance_m",
                 "no_coordinates_reason", "flags", "review_state", "reviewed_by", "reviewed_at", "review_reason",
                 "corrects_visit_id", "correction_reason", "created_at", "version")
DELIVERY_COLUMNS = ("id", "visit_id", "resident_id", "item_id", "item_code", "quantity", "notes", "delivered_on",
                    "area_path", "district_code", "created_at")
REVIEW_COLUMNS = ("id", "visit_id", "district_code", "decision", "reason", "comment", "reviewed_by", "created_at")
TASK_COLUMNS = ("id", "resident_id", "community_id", "area_path", "district_code", "kind", "period", "due_date",
                "state", "reason", "note", "created_by", "source_visit_id", "completed_by_visit_id", "completed_at",
                "cancelled_by", "cancel_reason", "created_at", "updated_at", "version")
# What is handed out on a home visit (procedures such as termination or sterilisation happen in a clinic).
WOMEN_ITEMS = {"contraceptives": 35, "education": 30, "pregnancy_iud_check": 20, "rh_checkup": 8,
               "iud_procedure": 2, "complications": 2}
OTHER_ITEMS = {"education": 70, "contraceptives": 30}
NO_FIX_REASONS = ("gps_unavailable", "indoors_no_signal", "permission_denied", "device_fault")
# How a supervisor flags a visit with a given first check-in flag (app/visits/schemas.py ReviewReason).
REVIEW_REASONS = {"outside_radius": "location_mismatch", "poor_accuracy": "location_mismatch",
                  "mock_location": "location_mismatch", "clock_ahead": "time_implausible",
                  "late_record": "time_implausible", "stale_fix": "time_implausible", "no_coordinates": "incomplete"}


@dataclass
class VisitCounts:
    visits: int = 0
    deliveries: int = 0
    reviews: int = 0
    tasks: int = 0
    tasks_done: int = 0
    flagged: int = 0  # visits with at least one check-in flag


@dataclass
class _Person:
    id: str
    community_id: str
    dwelling_id: str
    area_path: str
    district_code: str
    woman_15_49: bool
    child: bool
    arrival_date: date
    key_person: bool


@dataclass
class _Made:
    id: str
    started: datetime
    received: datetime
    mode: VisitMode
    outcome: VisitOutcome


class _Generator:
    def __init__(self, rng: random.Random, today: date, now: datetime, catalog: int | None,
                 items: list[Any], homes: dict[str, tuple[float, float] | None]) -> None:
        self.rng, self.today, self.now = rng, today, now
        self.settings = get_settings()
        self.catalog = catalog
        self.items = items
        self.homes = homes
        self.visits: list[tuple[Any, ...]] = []
        self.deliveries: list[tuple[Any, ...]] = []
        self.reviews: list[tuple[Any, ...]] = []
        self.counts = VisitCounts()

    def new_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def moment(self, day: date, earliest: time = time(8, 30)) -> datetime | None:
        """A working-hours start on `day` (city time), at least an hour before now; None if there is none."""
        start = datetime.combine(day, earliest, CITY_TZ)
        span = (datetime.combine(day, time(18, 0), CITY_TZ) - start).total_seconds()
        moment = start + timedelta(seconds=int(self.rng.random() * span))
        latest = self.now - timedelta(hours=1)
        if moment > latest:
            if start > latest:
                return None
            moment = start + timedelta(seconds=int(self.rng.random() * (latest - start).total_seconds()))
        return moment

    def visit(self, person: _Person, worker: str, reviewer: str | None, day: date, purpose: VisitPurpose,
              mode: VisitMode | None = None, outcome: VisitOutcome | None = None) -> _Made | None:
        """Record one visit (and its deliveries, maybe a review); None when the day has no time left."""
        if self.catalog is None:
            return None
        rng, settings = self.rng, self.settings
        started = self.moment(day)
        if started is None:
            return None
        mode = mode or (VisitMode.phone if rng.random() < 0.18 else VisitMode.in_person)
        if outcome is None:
            r = rng.random()
            if mode == VisitMode.phone:
                outcome = VisitOutcome.met if r < 0.85 else VisitOutcome.unreachable
            else:
                outcome = VisitOutcome.met if r < 0.86 else (VisitOutcome.not_home if r < 0.98 else
                                                             VisitOutcome.refused)
        met = outcome == VisitOutcome.met
        minutes = (rng.uniform(2, 9) if mode == VisitMode.phone else
                   rng.uniform(8, 35) if met else rng.uniform(2, 6))
        ended = started + timedelta(minutes=minutes)
        r = rng.random()
        delay = (timedelta(seconds=rng.uniform(5, 600)) if r < 0.85 else
                 timedelta(hours=rng.uniform(1, 8)) if r < 0.97 else timedelta(days=rng.uniform(3.2, 6)))
        received = min(ended + delay, self.now - timedelta(seconds=rng.uniform(60, 900)))
        received = max(received, ended + timedelta(seconds=1))
        checkin: dict[str, Any] = dict.fromkeys(("lat", "lng", "coord_system", "accuracy_m", "provider", "fix_time",
                                                 "no_coordinates_reason"))
        mock = False
        home = self.homes.get(person.dwelling_id)
        if mode == VisitMode.in_person:
            if rng.random() < 0.04:
                checkin["no_coordinates_reason"] = rng.choice(NO_FIX_REASONS)
            else:
                mock = rng.random() < 0.01
                checkin.update(self.fix(home, started, ended))
        # The server's own check (app/visits/checkin.py), so the demo's flags are the ones it would compute.
        facts = CheckinFacts(mode=mode.value, started_at=started, ended_at=ended, lat=checkin["lat"],
                             lng=checkin["lng"], accuracy_m=checkin["accuracy_m"], mock_location=mock,
                             fix_time=checkin["fix_time"])
        distance, flags = assess(facts, home, received, settings)
        visit_id = self.new_id()
        review_state, reviewed_by, reviewed_at, reason = ReviewState.submitted.value, None, None, None
        reviewed = received + timedelta(days=rng.uniform(1, 6))
        if reviewer and reviewed < self.now - timedelta(days=7):
            r = rng.random()
            if not flags and r < 0.75:
                review_state = ReviewState.approved.value
            elif flags and r < 0.5:  # checked: half confirmed as fine, the others flagged
                review_state, reason = ((ReviewState.approved.value, "checked_ok") if rng.random() < 0.5 else
                                        (ReviewState.flagged.value, REVIEW_REASONS.get(flags[0], "other")))
            if review_state != ReviewState.submitted.value:
                reviewed_by, reviewed_at = reviewer, reviewed
                self.reviews.append((self.new_id(), visit_id, person.district_code, review_state, reason, None,
                                     reviewer, reviewed))
        codes = (["documents_checked", "address_confirmed", "counselling_given", "fp_certificate_checked"] if met else
                 ["at_work", "follow_up_needed", "neighbour_confirmed"])
        notes = sorted({rng.choice(codes) for _ in range(rng.choice((0, 1, 1, 2)))})
        self.visits.append((
            visit_id, person.id, worker, person.community_id, person.dwelling_id, person.area_path,
            person.district_code, mode.value, purpose.value, outcome.value, started, ended, received, _json(notes),
            self.catalog, checkin["lat"], checkin["lng"], checkin["coord_system"], checkin["accuracy_m"],
            checkin["provider"], mock, checkin["fix_time"], distance, checkin["no_coordinates_reason"],
            _json(flags), review_state, reviewed_by, reviewed_at, reason, None, None, received,
            1 if reviewed_by is None else 2,
        ))
        self.counts.visits += 1
        self.counts.flagged += bool(flags)
        if met:
            self.deliver(person, visit_id, mode, city_date(started), received)
        return _Made(visit_id, started, received, mode, outcome)

    def fix(self, home: tuple[float, float] | None, started: datetime, ended: datetime) -> dict[str, Any]:
        """A phone's location fix (stored WGS-84) near the dwelling; a few far away or imprecise."""
        rng = self.rng
        r = rng.random()
        if r < 0.04:
            distance, accuracy, provider = rng.uniform(250, 900), rng.uniform(8, 40), "gps"
        elif r < 0.07:
            distance, accuracy, provider = rng.uniform(20, 300), rng.uniform(120, 600), "network"
        else:
            distance = abs(rng.gauss(0, 18))
            accuracy = round(rng.uniform(3, 35), 1)
            provider = rng.choice(("gps", "gps", "fused", "fused", "network"))
        lat0, lng0 = home if home is not None else (34.7466, 113.6254)
        bearing = rng.uniform(0, 2 * math.pi)
        lat = lat0 + math.degrees(distance * math.cos(bearing) / EARTH_RADIUS_M)
        lng = lng0 + math.degrees(distance * math.sin(bearing) / (EARTH_RADIUS_M * math.cos(math.radians(lat0))))
        fix_time = started - timedelta(seconds=rng.uniform(0, 90))
        if rng.random() < 0.01:
            fix_time = started - timedelta(minutes=rng.uniform(30, 90))
        return {"lat": round(lat, 7), "lng": round(lng, 7), "coord_system": rng.choice(("gcj02", "gcj02", "wgs84")),
                "accuracy_m": round(accuracy, 1), "provider": provider, "fix_time": min(fix_time, ended)}

    def deliver(self, person: _Person, visit_id: str, mode: VisitMode, on: date, received: datetime) -> None:
        if person.child:
            return
        rng = self.rng
        weights = WOMEN_ITEMS if person.woman_15_49 else OTHER_ITEMS
        if mode == VisitMode.phone:
            weights, how_many = {"education": 1}, (1 if rng.random() < 0.15 else 0)
        else:
            r = rng.random()
            how_many = 0 if r < 0.45 else (1 if r < 0.85 else 2)
        effective = {code: item_id for item_id, code, start, end in self.items
                     if start <= on and (end is None or on <= end)}
        choices = [c for c in weights if c in effective]
        for code in _sample(rng, choices, [weights[c] for c in choices], how_many):
            quantity = rng.randint(1, 3) if code == "contraceptives" else 1
            notes = ("first_time", "refill", "refill") if code == "contraceptives" else ("at_home", "materials_given")
            note = _json([rng.choice(notes)] if rng.random() < 0.6 else [])
            self.deliveries.append((self.new_id(), visit_id, person.id, effective[code], code, quantity, note, on,
                                    person.area_path, person.district_code, received))
            self.counts.deliveries += 1


def _json(codes: Sequence[str]) -> str:
    """As the server stores code lists (app/visits/service.py)."""
    return json.dumps(list(codes), separators=(",", ":"))


def _sample(rng: random.Random, items: Sequence[str], weights: Sequence[float], k: int) -> list[str]:
    """k distinct items, drawn by weight."""
    pool, w, out = list(items), list(weights), []
    for _ in range(min(k, len(pool))):
        index = rng.choices(range(len(pool)), weights=w)[0]
        out.append(pool.pop(index))
        w.pop(index)
    return out


def _months(start: date, end: date) -> list[tuple[date, date]]:
    """(first day, last day) of each calendar month overlapping start..end, clipped to it."""
    out = []
    first = start.replace(day=1)
    while first <= end:
        following = (first + timedelta(days=32)).replace(day=1)
        out.append((max(first, start), min(following - timedelta(days=1), end)))
        first = following
    return out


def _day_between(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=int(rng.random() * ((end - start).days + 1))) if end > start else start


def _staff(session: Session) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(area path, user id) of active workers (community or grid scope) and of active supervisors."""
    rows = session.execute(
        select(col(User.id), col(User.role), col(Division.path), col(Division.level))
        .join(UserScope, col(UserScope.user_id) == col(User.id))
        .join(Division, col(Division.id) == col(UserScope.division_id))
        .where(col(User.active), col(User.role).in_([Role.worker.value, Role.supervisor.value]))
        .order_by(col(User.username), col(Division.path))).all()
    workers = [(path, uid) for uid, role, path, level in rows
               if role == Role.worker.value and level in (Level.community.value, Level.grid.value)]
    supervisors = [(path, uid) for uid, role, path, _ in rows if role == Role.supervisor.value]
    return workers, supervisors


def _history(gen: _Generator, p: _Person, worker: str, reviewer: str | None, window_start: date,
             due_day: int) -> list[_Made]:
    """One resident's visits in the window."""
    rng, today = gen.rng, gen.today
    made: list[_Made | None] = []
    # New arrivals: an in-person visit within days of arriving (most of them).
    if p.arrival_date >= window_start and rng.random() < 0.75:
        day = p.arrival_date + timedelta(days=int(rng.random() * (gen.settings.new_arrival_visit_days + 3)))
        if day <= today:
            made.append(gen.visit(p, worker, reviewer, day, VisitPurpose.new_arrival, VisitMode.in_person,
                                  VisitOutcome.met))
    if p.key_person:
        for first, last in _months(max(window_start, p.arrival_date), today):
            current = (first.year, first.month) == (today.year, today.month)
            # Most key persons are seen before the due day; this month's visits are still coming in.
            chance = 0.8 * min(1.0, (today.day - 1) / max(1, due_day - 1)) if current else 0.9
            if rng.random() >= chance:
                continue
            end = min(last, first.replace(day=due_day)) if rng.random() < 0.85 else last
            day = _day_between(rng, first, max(first, end))
            visit = gen.visit(p, worker, reviewer, day, VisitPurpose.key_person)
            made.append(visit)
            if visit and visit.outcome != VisitOutcome.met and day < last:  # another try a few days later
                made.append(gen.visit(p, worker, reviewer, _day_between(rng, day + timedelta(days=1), last),
                                      VisitPurpose.key_person, outcome=VisitOutcome.met))
    elif rng.random() < ROUTINE_SHARE:
        purpose = VisitPurpose.verification if rng.random() < 0.2 else VisitPurpose.routine
        made.append(gen.visit(p, worker, reviewer, _day_between(rng, max(window_start, p.arrival_date), today),
                              purpose))
    return [m for m in made if m is not None]


def seed_visits(session: Session, seed: int = 20261129, *, today: date | None = None,
                now: datetime | None = None) -> VisitCounts:
    """Generate the visit history and tasks for the residents already in the database (see the module doc)."""
    settings = get_settings()
    today, now = today or city_today(), now or utcnow()
    rng = random.Random(seed)
    window_start = today - timedelta(days=WINDOW_DAYS)
    arrivals_since = today - timedelta(days=NEW_ARRIVAL_DAYS)
    workers, supervisors = _staff(session)
    catalog = session.execute(select(func.max(col(CatalogVersion.version)))).scalar_one_or_none()
    items = list(session.execute(
        select(col(ServiceItem.id), col(ServiceItem.code), col(ServiceItem.effective_from),
               col(ServiceItem.effective_to)).order_by(col(ServiceItem.sort_order), col(ServiceItem.code))).all())

    communities = session.execute(select(col(Division.id), col(Division.path))
                                  .where(col(Division.level) == Level.community.value)).all()
    covered = {cid for cid, path in communities
               if any(w.startswith(path) or path.startswith(w) for w, _ in workers)}
    stmt = (select(col(Resident.id), col(Resident.community_id), col(Resident.dwelling_id), col(Resident.area_path),
                   col(Resident.district_code), col(Resident.sex), col(Resident.birth_date),
                   col(Resident.arrival_date), col(Resident.key_person))
            .where(col(Resident.status) == ResidentStatus.registered.value)
            .where(or_(col(Resident.key_person), col(Resident.arrival_date) >= arrivals_since,
                       col(Resident.community_id).in_(sorted(covered)))))
    people: list[_Person] = []
    for rid, cid, did, path, district, sex, born, arrived, key in session.execute(stmt):
        age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
        people.append(_Person(rid, cid, did, path, district, sex == "F" and 15 <= age <= 49, age < 15, arrived,
                              bool(key)))
    people.sort(key=lambda p: (p.area_path, p.id))  # division ids are random: order by codes
    dwelling_ids = {p.dwelling_id for p in people}
    homes: dict[str, tuple[float, float] | None] = {}
    if dwelling_ids:
        for did, lat, lng in session.execute(select(col(Dwelling.id), col(Dwelling.lat), col(Dwelling.lng))
                                             .where(col(Dwelling.community_id).in_({p.community_id for p in people}))):
            homes[did] = (lat, lng) if lat is not None and lng is not None else None
    gen = _Generator(rng, today, now, catalog, items, homes)

    due_day = settings.key_person_visit_due_day
    month_start, period, due = today.replace(day=1), f"{today:%Y-%m}", today.replace(day=due_day)
    month_created = min(datetime.combine(month_start, time(0, 5), CITY_TZ), now)  # the monthly generation
    tasks: list[tuple[Any, ...]] = []

    def task(p: _Person, kind: TaskKind, period: str, due_date: date, created: datetime,
             done: _Made | None) -> None:
        state = TaskState.done.value if done else TaskState.open.value
        completed = max(done.received, created) if done else None
        tasks.append((gen.new_id(), p.id, p.community_id, p.area_path, p.district_code, kind.value, period, due_date,
                      state, None, None, None, None, done.id if done else None, completed, None, None,
                      created, completed or created, 2 if done else 1))
        gen.counts.tasks += 1
        gen.counts.tasks_done += bool(done)

    for p in people:
        made: list[_Made] = []
        mine = [uid for path, uid in workers if p.area_path.startswith(path)]
        if mine:
            worker = mine[int(rng.random() * len(mine))]
            reviewer = max(((path, uid) for path, uid in supervisors if p.area_path.startswith(path)),
                           default=None, key=lambda s: len(s[0]))
            made = _history(gen, p, worker, reviewer[1] if reviewer else None, window_start, due_day)
        # A met visit completes the open task it matches (docs/visits.md), the first one to arrive wins.
        met = sorted((m for m in made if m.outcome == VisitOutcome.met), key=lambda m: m.received)
        if p.key_person:
            this_month = next((m for m in met if city_date(m.started) >= month_start), None)
            task(p, TaskKind.key_person_monthly, period, due, month_created, this_month)
        if p.arrival_date >= arrivals_since:
            created = min(datetime.combine(p.arrival_date, time(8, 0), CITY_TZ), now)
            arrival = next((m for m in met if m.mode == VisitMode.in_person and m.started >= created), None)
            task(p, TaskKind.new_arrival_visit, p.arrival_date.isoformat(),
                 p.arrival_date + timedelta(days=settings.new_arrival_visit_days), created, arrival)

    writer = BulkWriter(session)
    writer.write(table_of(Visit), VISIT_COLUMNS, gen.visits)
    writer.write(table_of(ServiceDelivery), DELIVERY_COLUMNS, gen.deliveries)
    writer.write(table_of(VisitReview), REVIEW_COLUMNS, gen.reviews)
    writer.write(table_of(Task), TASK_COLUMNS, tasks)
    counts = gen.counts
    counts.reviews = len(gen.reviews)
    audit.record(session, "demo.visits", detail={
        "visits": counts.visits, "service_deliveries": counts.deliveries, "visit_reviews": counts.reviews,
        "tasks": counts.tasks, "tasks_done": counts.tasks_done,
    })
    return counts
