"""Demo visits and tasks (app/demo/visits.py): made by the area's workers, flags as the server computes them,
deliveries from the catalogue, tasks that agree with the visits, readable through the API."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from app.auth.models import User, UserScope
from app.catalog.models import ServiceItem
from app.cli import alembic_config
from app.core.config import get_settings
from app.core.db import create_db_engine, unit_of_work, use_engine
from app.core.types import city_date, city_today
from app.cycle.models import Task
from app.demo import seed as seed_module
from app.demo.partners import OUTFLOW_ID, POLICE_ID
from app.ledger.models import AuditEvent
from app.people.models import Resident
from app.places.models import Division, Dwelling
from app.visits.checkin import CheckinFacts, assess
from app.visits.models import ServiceDelivery, Visit, VisitReview
from tests.conftest import Databases


@pytest.fixture(scope="module")
def demo(databases: Databases) -> Iterator[tuple[Engine, dict[str, str]]]:
    """A database seeded like `migrant seed-demo --size 600` (with accounts, hence visits); logins by name."""
    name = f"{databases.run}_demovisits_{uuid.uuid4().hex[:8]}"
    url = databases.create_empty(name)
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    with unit_of_work(engine=engine) as session:
        result = seed_module.seed_demo(session, size=600)
    try:
        yield engine, {u: p for u, _, p in result.logins}
    finally:
        engine.dispose()
        databases.drop(name)


def _all(engine: Engine, model: type) -> list[Any]:
    with Session(engine) as session:
        return list(session.execute(select(model)).scalars())


def test_the_test_world_has_no_visits(engine: Engine) -> None:
    """Without accounts at seed time there is nobody to have visited (tests/conftest.py seeds that way)."""
    with Session(engine) as session:
        for model in (Visit, ServiceDelivery, Task):
            assert session.execute(select(func.count()).select_from(model)).scalar_one() == 0


def test_visits_are_made_by_the_areas_workers_with_the_servers_flags(demo: tuple[Engine, dict[str, str]]) -> None:
    engine, _ = demo
    visits = _all(engine, Visit)
    assert 300 <= len(visits) <= 1200  # about one per resident for 600 residents: cheap
    users = {u.id: u for u in _all(engine, User)}
    paths = {d.id: d.path for d in _all(engine, Division)}
    scopes: dict[str, list[str]] = {}
    for s in _all(engine, UserScope):
        scopes.setdefault(s.user_id, []).append(paths[s.division_id])
    residents = {r.id: r for r in _all(engine, Resident)}
    homes = {d.id: d for d in _all(engine, Dwelling)}
    settings = get_settings()
    now = max(v.received_at for v in visits)
    for v in visits:
        worker = users[v.worker_id]
        assert worker.role == "worker" and any(v.area_path.startswith(p) for p in scopes[worker.id])
        r = residents[v.resident_id]
        assert (v.community_id, v.area_path, v.district_code, v.dwelling_id) == (
            r.community_id, r.area_path, r.district_code, r.dwelling_id)
        assert v.started_at < v.ended_at < v.received_at <= now
        assert v.started_at >= now - timedelta(days=92)
        home = homes[v.dwelling_id]
        facts = CheckinFacts(mode=v.mode, started_at=v.started_at, ended_at=v.ended_at, lat=v.lat, lng=v.lng,
                             accuracy_m=v.accuracy_m, mock_location=v.mock_location, fix_time=v.fix_time)
        assert assess(facts, (home.lat, home.lng), v.received_at, settings) == (v.distance_m, json.loads(v.flags))
        if v.mode == "in_person" and v.lat is None:
            assert v.no_coordinates_reason
    flagged = [v for v in visits if v.flags != "[]"]
    assert 0 < len(flagged) < len(visits) * 0.3  # something to review, not everything
    assert {"in_person", "phone"} == {v.mode for v in visits}
    reviews = _all(engine, VisitReview)
    reviewed = {v.id: v for v in visits if v.review_state != "submitted"}
    assert reviews and {r.visit_id for r in reviews} == set(reviewed)
    for review in reviews:
        visit = reviewed[review.visit_id]
        assert (review.decision, review.reviewed_by, visit.version) == (visit.review_state, visit.reviewed_by, 2)
        assert users[review.reviewed_by].role == "supervisor" and review.reviewed_by != visit.worker_id


def test_deliveries_come_from_the_catalogue(demo: tuple[Engine, dict[str, str]]) -> None:
    engine, _ = demo
    visits = {v.id: v for v in _all(engine, Visit)}
    items = {i.id: i for i in _all(engine, ServiceItem)}
    deliveries = _all(engine, ServiceDelivery)
    assert deliveries
    pairs = [(d.visit_id, d.item_id) for d in deliveries]
    assert len(pairs) == len(set(pairs))
    for d in deliveries:
        visit, item = visits[d.visit_id], items[d.item_id]
        assert visit.outcome == "met" and d.resident_id == visit.resident_id and d.item_code == item.code
        assert d.delivered_on == city_date(visit.started_at) and item.effective_from <= d.delivered_on
        assert (d.area_path, d.district_code) == (visit.area_path, visit.district_code)


def test_tasks_agree_with_the_visits(demo: tuple[Engine, dict[str, str]]) -> None:
    engine, _ = demo
    today = city_today()
    visits = {v.id: v for v in _all(engine, Visit)}
    tasks = _all(engine, Task)
    keys = [(t.resident_id, t.kind, t.period) for t in tasks]
    assert len(keys) == len(set(keys))
    key_persons = {r.id for r in _all(engine, Resident) if r.key_person and r.status == "REGISTERED"}
    monthly = [t for t in tasks if t.kind == "key_person_monthly"]
    assert {t.resident_id for t in monthly} == key_persons and {t.period for t in monthly} == {f"{today:%Y-%m}"}
    met_this_month = {v.resident_id for v in visits.values()
                      if v.outcome == "met" and city_date(v.started_at) >= today.replace(day=1)}
    for t in monthly:
        assert (t.state == "done") == (t.resident_id in met_this_month)
    for t in tasks:
        if t.state == "done":
            visit = visits[t.completed_by_visit_id]
            assert visit.resident_id == t.resident_id and visit.outcome == "met" and t.completed_at is not None
            if t.kind == "new_arrival_visit":
                assert visit.mode == "in_person"
        else:
            assert t.state == "open" and t.completed_by_visit_id is None
    assert {"done", "open"} == {t.state for t in tasks}
    assert any(t.kind == "new_arrival_visit" for t in tasks)


def test_the_seed_is_audited_with_counts(demo: tuple[Engine, dict[str, str]]) -> None:
    engine, _ = demo
    with Session(engine) as session:
        event = session.execute(select(AuditEvent).where(col(AuditEvent.action) == "demo.visits")).scalar_one()
        detail = json.loads(event.detail or "{}")
        counts = {name: session.execute(select(func.count()).select_from(model)).scalar_one()
                  for name, model in (("visits", Visit), ("service_deliveries", ServiceDelivery),
                                      ("visit_reviews", VisitReview), ("tasks", Task))}
    assert {k: detail[k] for k in counts} == counts


def test_a_demo_worker_reads_the_history_through_the_api(demo: tuple[Engine, dict[str, str]]) -> None:
    engine, logins = demo
    username = next(u for u in logins if u.startswith("w_"))
    with Session(engine) as session:
        worker = session.execute(select(User).where(col(User.username) == username)).scalar_one()
        mine = session.execute(select(col(Visit.id)).where(col(Visit.worker_id) == worker.id)).scalars().all()
    assert mine
    use_engine(engine)
    try:
        from app.main import app

        with TestClient(app, base_url="http://testserver") as client:
            token = client.post("/api/v1/auth/login", json={"username": username, "password": logins[username]})
            assert token.status_code == 200, token.text
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            listed = client.get("/api/v1/visits", params={"worker_id": worker.id, "limit": 200}, headers=headers)
            assert listed.status_code == 200, listed.text
            assert listed.json()["total"] == len(mine)
            for visit_id in mine[:25]:
                one = client.get(f"/api/v1/visits/{visit_id}", headers=headers)
                assert one.status_code == 200, one.text
                assert one.json()["id"] == visit_id
    finally:
        use_engine(None)


def test_the_demo_partners_sign_in_and_see_their_part(demo: tuple[Engine, dict[str, str]]) -> None:
    """The police station's client credentials give a token that looks up a resident of its street; the landlord
    signs in with phone and password and sees their current tenants (app/demo/partners.py)."""
    engine, logins = demo
    with Session(engine) as session:
        street = session.execute(select(Division).where(col(Division.level) == "street")
                                 .order_by(col(Division.path))).scalars().first()
        assert street is not None
        person = session.execute(select(Resident).where(col(Resident.area_path).startswith(street.path))
                                 .order_by(col(Resident.id))).scalars().first()
        assert person is not None
    use_engine(engine)
    try:
        from app.main import app

        with TestClient(app, base_url="http://testserver") as client:
            token = client.post("/api/v1/partner/oauth/token", data={
                "grant_type": "client_credentials", "client_id": POLICE_ID, "client_secret": logins[POLICE_ID]})
            assert token.status_code == 200, token.text
            found = client.post("/api/v1/partner/police/lookup", json={"id_number": person.id_number},
                                headers={"Authorization": f"Bearer {token.json()['access_token']}"})
            assert found.status_code == 200, found.text
            assert found.json()["person"]["id_number"] == person.id_number and "health" not in found.text
            assert client.post("/api/v1/partner/oauth/token", data={
                "grant_type": "client_credentials", "client_id": OUTFLOW_ID,
                "client_secret": logins[OUTFLOW_ID]}).status_code == 200
            phone = next(u for u in logins if u.isdigit())
            signed = client.post("/api/v1/auth/login", json={"username": phone, "password": logins[phone]})
            assert signed.status_code == 200, signed.text
            tenants = client.get("/api/v1/partner/landlord/tenants",
                                 headers={"Authorization": f"Bearer {signed.json()['access_token']}"})
            assert tenants.status_code == 200, tenants.text
            assert tenants.json()["total"] >= 1
    finally:
        use_engine(None)
        get_settings.cache_clear()
