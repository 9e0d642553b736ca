"""The demo generator: valid IDs, realistic shares, key persons as the live rule decides, an idempotent CLI,
a bulk load that leaves the schema exactly as the migrations made it."""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, func, inspect, select
from sqlmodel import Session, col
from typer.testing import CliRunner

from app.auth.models import User
from app.cli import alembic_config, cli
from app.core.config import get_settings
from app.core.db import create_db_engine, unit_of_work, use_engine
from app.core.types import city_today, utcnow
from app.cycle.models import Task
from app.demo import residents as people
from app.demo import seed as seed_module
from app.people import rules
from app.people.models import FpDocument, HealthRecord, Landlord, Resident, Tenancy
from app.people.register import service
from app.places.models import Dwelling
from app.visits.models import Visit
from tests.conftest import Databases


def _all(engine: Engine, model: type) -> list[Any]:
    with Session(engine) as session:
        return list(session.execute(select(model)).scalars())


def _count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


@pytest.fixture()
def fresh_engine(databases: Databases) -> Iterator[Engine]:
    """A migrated, empty database the application is pointed at."""
    name = f"{databases.run}_demo_{uuid.uuid4().hex[:8]}"
    url = databases.create_empty(name)
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    use_engine(engine)
    try:
        yield engine
    finally:
        use_engine(None)
        engine.dispose()
        databases.drop(name)


# --- the test world's demo people (seed_demo(size=1000) in conftest) ------------------------------------

def test_every_demo_id_is_valid_and_agrees_with_the_record(engine: Engine) -> None:
    residents = _all(engine, Resident)
    assert len(residents) == 1000
    for r in residents:
        parsed = rules.parse_id(r.id_number)
        assert parsed.check_ok and parsed.number == r.id_number
        assert (parsed.sex, parsed.birth_date) == (r.sex, r.birth_date)
        assert r.hukou_code == r.id_number[:6] and int(r.id_number[14:17]) >= people.SEQ_MIN
        assert r.arrival_date <= city_today() and r.arrival_date >= r.birth_date
        assert r.phone is None or rules.MOBILE.match(r.phone)
    landlords = _all(engine, Landlord)
    assert landlords and all(rules.parse_id(ll.id_number).check_ok for ll in landlords)
    assert len({r.id_number for r in residents} | {ll.id_number for ll in landlords}) == 1000 + len(landlords)
    codes = {r.hukou_code[:4] for r in residents}
    assert {"4116", "4117", "4115"} <= codes  # 周口, 驻马店, 信阳
    assert any(not c.startswith("41") for c in codes)  # and people from other provinces


def test_shares_are_realistic(engine: Engine) -> None:
    today = city_today()
    residents = [r for r in _all(engine, Resident) if r.status == "REGISTERED"]
    women = [r for r in residents if r.sex == "F"]
    wra = [r for r in women if 15 <= rules.age_on(r.birth_date, today) <= 49]
    adults = [r for r in residents if 18 <= rules.age_on(r.birth_date, today) <= 55]
    assert 0.42 <= len(women) / len(residents) <= 0.55
    assert 0.28 <= len(wra) / len(residents) <= 0.42
    assert len(adults) / len(residents) >= 0.6
    key = [r for r in residents if r.key_person]
    assert 0.1 <= len(key) / len(residents) <= 0.4


def test_key_person_flags_follow_the_rule(engine: Engine) -> None:
    today = city_today()
    health = {h.resident_id: h for h in _all(engine, HealthRecord)}
    docs: dict[str, list[FpDocument]] = {}
    for d in _all(engine, FpDocument):
        docs.setdefault(d.resident_id, []).append(d)
    residents = _all(engine, Resident)
    flags = [service.is_key_person(r, health.get(r.id), docs.get(r.id, []), today) for r in residents]
    assert flags == [r.key_person for r in residents]
    assert any(flags) and not all(flags)
    # Reproductive-health data only for women of 15–49, and well-formed.
    for resident_id, h in health.items():
        assert json.loads(h.children) is not None and resident_id in {r.id for r in residents if r.sex == "F"}


def test_tenancies_and_dwellings_agree(engine: Engine) -> None:
    dwellings = {d.id: d for d in _all(engine, Dwelling)}
    current: dict[str, list[Tenancy]] = {}
    for t in _all(engine, Tenancy):
        assert t.move_out is None or t.move_out >= t.move_in
        if t.move_out is None:
            current.setdefault(t.resident_id, []).append(t)
    for r in _all(engine, Resident):
        home = dwellings[r.dwelling_id]
        assert (r.area_path, r.community_id, r.district_code) == (home.area_path, home.community_id,
                                                                 home.district_code)
        open_ones = current.get(r.id, [])
        assert len(open_ones) == (1 if r.status == "REGISTERED" else 0)
    rentals = [d for d in dwellings.values() if d.kind == "rental"]
    assert rentals and all(d.landlord_id for d in rentals)


def test_generator_is_deterministic() -> None:
    now = utcnow()
    community = {"id": "c" * 32, "district_code": "410105"}
    homes = [{"id": f"{i:032x}", "area_path": "/410100/410105/", "district_code": "410105", "kind": "rental"}
             for i in range(20)]
    one = people.PeopleGenerator(random.Random(7), city_today(), now).community(community, homes, 300)
    two = people.PeopleGenerator(random.Random(7), city_today(), now).community(community, homes, 300)
    assert one == two and len(one.residents) == 300


# --- seeding a fresh database ---------------------------------------------------------------------------

def test_seed_demo_command_is_idempotent(fresh_engine: Engine, tmp_path: Path) -> None:
    os.environ["DEMO_LOGINS_FILE"] = str(tmp_path / "logins.txt")
    get_settings.cache_clear()
    try:
        first = CliRunner().invoke(cli, ["seed-demo", "--size", "300"])
        assert first.exit_code == 0, first.output
        assert "300 residents" in first.output and "residents/s" in first.output
        counts = {m.__name__: _count(fresh_engine, m) for m in (Resident, Tenancy, Landlord, User, Visit, Task)}
        assert counts["Resident"] == 300 and counts["Visit"] > 0 and counts["Task"] > 0
        assert f"{counts['Visit']} visits" in first.output and f"{counts['Task']} tasks" in first.output
        again = CliRunner().invoke(cli, ["seed-demo", "--size", "5000", "--seed", "3"])
        assert again.exit_code == 0 and "already present" in again.output
        assert {m.__name__: _count(fresh_engine, m)
                for m in (Resident, Tenancy, Landlord, User, Visit, Task)} == counts
    finally:
        del os.environ["DEMO_LOGINS_FILE"]
        get_settings.cache_clear()


def test_staff_accounts_are_bounded(fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seed_module, "MAX_ACCOUNTS", 5)
    with unit_of_work(engine=fresh_engine) as session:
        result = seed_module.seed_demo(session, size=100)
    staff = [(u, r, p) for u, r, p in result.logins if r in ("admin", "auditor", "supervisor", "worker")]
    assert [(u, r) for u, r, _ in staff][:2] == [("admin", "admin"), ("auditor", "auditor")]
    assert len(staff) == 5 and {r for _, r, _ in staff[2:]} == {"supervisor"}
    # The demo's partners come on top: a police station, an outflow city and a landlord (app/demo/partners.py).
    assert sorted(r for u, r, p in result.logins if (u, r, p) not in staff) == ["landlord", "outflow_city", "police"]
    assert len({p for _, _, p in result.logins}) == len(result.logins)  # never a shared password
    assert _count(fresh_engine, User) == len(result.logins)


def test_bulk_load_leaves_the_schema_as_migrated(fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Big seeds drop and rebuild the people tables' secondary indexes (and foreign keys on PostgreSQL)."""
    def shape(engine: Engine) -> dict[str, object]:
        insp = inspect(engine)
        return {t: (sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(t)),
                    sorted((fk["name"] or "", tuple(fk["constrained_columns"]), fk["referred_table"])
                           for fk in insp.get_foreign_keys(t)))
                for t in people.PEOPLE_TABLES}

    before = shape(fresh_engine)
    monkeypatch.setattr(seed_module, "BIG", 0)
    with unit_of_work(engine=fresh_engine) as session:
        result = seed_module.seed_demo(session, size=400, with_users=False, districts=1)
    assert result.residents == 400 and _count(fresh_engine, Resident) == 400
    assert shape(fresh_engine) == before
    with Session(fresh_engine) as session:
        districts = session.execute(select(col(Resident.district_code)).distinct()).scalars().all()
    assert districts == ["410105"]
