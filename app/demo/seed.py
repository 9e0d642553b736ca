"""Demo data: a Zhengzhou-shaped city with streets, communities of all five types, grids, dwellings,
landlords, staff accounts and `size` residents with their tenancies, 婚育证明 checks and health records
(app/demo/residents.py). Deterministic for a given seed (and date); passwords are random per installation
(no defaults).

`size` is the number of residents; it also sets how many communities and dwellings are generated (about
500 residents and 170 dwellings per community, at least 10 communities). `districts` caps the number of
districts (the search benchmark puts 200,000 residents into one district).

Staff accounts are bounded whatever the size (argon2 costs about a second per password here): admin,
auditor, a supervisor per district, then a street supervisor and the first community's worker street by
street, at most `MAX_ACCOUNTS` in all. Other communities have no demo account; an admin creates them.
"""

from __future__ import annotations

import os
import random
import secrets
import string
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlmodel import Session, col

from app.auth.models import User, UserScope
from app.core.actor import Role
from app.core.bulk import BulkWriter, table_of
from app.core.security import hash_password
from app.core.types import city_today, new_id, utcnow
from app.demo import partners as demo_partners
from app.demo import residents as people
from app.demo import visits as demo_visits
from app.ledger import audit
from app.places.models import CommunityType, Division, Dwelling, DwellingKind, Level

CITY = ("410100", "郑州市", 34.7466, 113.6254)
DISTRICTS = [
    ("410105", "金水区", 34.800, 113.660, ["经八路街道", "花园路街道", "丰产路街道", "文化路街道"]),
    ("410103", "二七区", 34.724, 113.640, ["五里堡街道", "大学路街道", "建中街街道", "蜜蜂张街道"]),
    ("410102", "中原区", 34.748, 113.612, ["林山寨街道", "建设路街道", "棉纺路街道", "秦岭路街道"]),
    ("410104", "管城回族区", 34.754, 113.678, ["北下街街道", "西大街街道", "南关街道", "城东路街道"]),
    ("410108", "惠济区", 34.867, 113.617, ["新城街道", "刘寨街道", "老鸦陈街道", "长兴路街道"]),
    ("410106", "上街区", 34.802, 113.308, ["济源路街道", "中心路街道", "新安路街道", "工业路街道"]),
    ("410122", "中牟县", 34.719, 113.976, ["青年路街道", "东风路街道", "广惠街街道", "城东街道"]),
    ("410181", "巩义市", 34.748, 113.022, ["新华路街道", "杜甫路街道", "永安路街道", "孝义街道"]),
    ("410182", "荥阳市", 34.787, 113.383, ["索河街道", "京城路街道", "豫龙镇", "广武镇"]),
    ("410183", "新密市", 34.540, 113.391, ["青屏街街道", "新华路街道", "西大街街道", "矿区街道"]),
    ("410184", "新郑市", 34.396, 113.740, ["新建路街道", "新华路街道", "新烟街道", "龙湖镇"]),
    ("410185", "登封市", 34.454, 113.050, ["嵩阳街道", "少林街道", "中岳街道", "大金店镇"]),
]
COMMUNITY_NAMES = {
    CommunityType.gated: ["锦绣花园社区", "绿城小区社区", "建业森林半岛社区", "正弘城社区"],
    CommunityType.mixed: ["纬五路社区", "文化路社区", "铁路新村社区", "农业路社区"],
    CommunityType.market: ["银基商贸城社区", "火车站商圈社区", "万客来市场社区", "二七商圈社区"],
    CommunityType.urban_village: ["陈砦村", "燕庄村", "姚砦村", "刘庄村"],
    CommunityType.fringe: ["十八里河社区", "南曹村", "圃田村", "老鸦陈村"],
}
STREET_ROADS = ["经三路", "纬一路", "文化路", "农业路", "金水路", "花园路", "建设路", "中原路", "航海路", "大学路"]
RESIDENTS_PER_COMMUNITY = 500
DWELLINGS_PER_COMMUNITY = 170
MAX_ACCOUNTS = 24
BIG = 50_000  # from this size on, SQLite gets a larger page cache while loading


@dataclass
class DemoResult:
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (username, role, password)
    divisions: int = 0
    dwellings: int = 0
    landlords: int = 0
    residents: int = 0
    tenancies: int = 0
    fp_documents: int = 0
    health_records: int = 0
    key_persons: int = 0
    women_15_49: int = 0
    visits: int = 0  # with the accounts: app/demo/visits.py
    service_deliveries: int = 0
    tasks: int = 0


def random_password(rng: random.Random | None = None) -> str:
    """A password that satisfies the policy: 4 classes, 14 characters, from the OS's CSPRNG."""
    alphabet = string.ascii_letters + string.digits
    core = "".join(secrets.choice(alphabet) for _ in range(10))
    return core + secrets.choice(string.ascii_uppercase) + secrets.choice(string.ascii_lowercase) + \
        secrets.choice(string.digits) + secrets.choice("!@#%&*+=?")


def plan(size: int) -> tuple[int, int]:
    """(communities, dwellings per community) for a target resident count."""
    communities = max(10, -(-size // RESIDENTS_PER_COMMUNITY))
    return communities, max(5, min(DWELLINGS_PER_COMMUNITY, -(-size // (communities * 3))))


def already_seeded(session: Session) -> bool:
    return session.execute(select(col(Division.id)).where(col(Division.code) == CITY[0]).limit(1)).first() is not None


@dataclass
class _Account:
    username: str
    name: str
    role: Role
    scope: list[dict[str, Any]]
    priority: int


def seed_demo(session: Session, size: int = 1000, seed: int = 20261129, with_users: bool = True, *,
              districts: int | None = None, progress: Callable[[int, int], None] | None = None,
              with_visits: bool | None = None) -> DemoResult:
    """Load the demo city into an empty database (the caller checks `already_seeded`).

    `progress(done, total)` is called as residents are written (the CLI draws a progress bar with it).
    `with_visits` (default: `with_users`) adds about three months of visits and the open tasks
    (app/demo/visits.py); visits need the workers' accounts.
    """
    rng = random.Random(seed)
    result = DemoResult()
    n_communities, dwellings_each = plan(size)
    now = utcnow()
    generator = people.PeopleGenerator(random.Random(seed + 1), city_today(), now)
    divisions: list[dict[str, Any]] = []
    dwellings: list[dict[str, Any]] = []
    landlords: list[tuple[Any, ...]] = []
    communities: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    accounts: list[_Account] = []

    def division(code: str, name: str, level: Level, parent: dict[str, Any] | None, ctype: str | None = None,
                 district: str | None = None) -> dict[str, Any]:
        row = {"id": new_id(), "code": code, "name": name, "level": level.value,
               "parent_id": parent["id"] if parent else None,
               "path": (parent["path"] if parent else "/") + code + "/", "district_code": district,
               "community_type": ctype, "vintage": 2024, "active": True, "created_at": now, "updated_at": now,
               "version": 1}
        divisions.append(row)
        return row

    def account(username: str, name: str, role: Role, scope: list[dict[str, Any]], priority: int) -> None:
        accounts.append(_Account(username, name, role, scope, priority))

    city = division(CITY[0], CITY[1], Level.city, None)
    types = list(CommunityType)
    made = 0
    # Spread communities over districts (at least 3 districts, 2 streets each), five types in turn.
    n_districts = min(len(DISTRICTS), max(3, -(-n_communities // 10)))
    if districts is not None:
        n_districts = max(1, min(n_districts, districts))
    per_district = -(-n_communities // n_districts)
    street_rank = 0
    for d_code, d_name, lat0, lng0, streets in DISTRICTS[:n_districts]:
        district = division(d_code, d_name, Level.district, city, district=d_code)
        account(f"sup_{d_code}", f"{d_name}督导", Role.supervisor, [district], 1)
        n_streets = max(2, min(len(streets), -(-per_district // 5)))
        per_street = -(-per_district // n_streets)
        if per_street > 999:  # community codes are street code + 3 digits
            raise ValueError("too many residents for the demo's districts: raise `districts` or lower `size`")
        for s_index, s_name in enumerate(streets[:n_streets], start=1):
            street = division(f"{d_code}{s_index:03d}", s_name, Level.street, district, district=d_code)
            street_rank += 1
            account(f"sup_{street['code']}", f"{s_name}督导", Role.supervisor, [street], 2 + 2 * street_rank)
            for c_index in range(1, per_street + 1):
                if made >= n_communities:
                    break
                ctype = types[made % len(types)]
                name = COMMUNITY_NAMES[ctype][(made // len(types)) % 4]
                code = f"{street['code']}{c_index:03d}"
                community = division(code, name, Level.community, street, ctype.value, d_code)
                grids = [division(f"G{g:02d}", f"第{g}网格", Level.grid, community, district=d_code)
                         for g in (1, 2)]
                account(f"w_{code}", f"{name}专干", Role.worker, [community],
                        3 + 2 * street_rank if c_index == 1 else 10_000 + made)
                c_lat, c_lng = lat0 + rng.uniform(-0.02, 0.02), lng0 + rng.uniform(-0.02, 0.02)
                homes: list[dict[str, Any]] = []
                for n in range(dwellings_each):
                    grid = grids[n % 2]
                    road = STREET_ROADS[rng.randrange(len(STREET_ROADS))]
                    homes.append({
                        "id": new_id(), "community_id": community["id"], "grid_id": grid["id"],
                        "area_path": grid["path"], "district_code": d_code,
                        "address": f"{road}{rng.randint(1, 300)}号{n // 20 + 1}号楼{n % 20 + 1:02d}室",
                        "kind": rng.choice([DwellingKind.rental.value] * 6 + [DwellingKind.own.value,
                                           DwellingKind.dormitory.value, DwellingKind.other.value]),
                        "lat": round(c_lat + rng.uniform(-0.004, 0.004), 6),
                        "lng": round(c_lng + rng.uniform(-0.004, 0.004), 6),
                        "landlord_id": None, "active": True, "created_at": now, "updated_at": now, "version": 1,
                    })
                landlords += generator.landlords(homes)
                dwellings += homes
                communities.append((community, homes))
                made += 1
    account("admin", "系统管理员", Role.admin, [], 0)
    account("auditor", "安全审计员", Role.auditor, [], 0)
    users, scopes = _users(accounts, with_users, now, result) if with_users else ([], [])

    bigger_cache = size >= BIG and session.get_bind().dialect.name == "sqlite"
    if bigger_cache:
        session.execute(text("PRAGMA cache_size=-524288"))  # 512 MiB while the indexes grow
    writer = BulkWriter(session)
    writer.write_dicts(table_of(Division), divisions)
    people.write_landlords(writer, landlords)  # before the dwellings that refer to them
    writer.write_dicts(table_of(Dwelling), dwellings)
    writer.write_dicts(table_of(User), users)
    writer.write_dicts(table_of(UserScope), scopes)
    if size >= BIG:
        with people.indexes_deferred(session, people.PEOPLE_TABLES):
            people.write_people(writer, generator, communities, size, progress)
    else:
        people.write_people(writer, generator, communities, size, progress)
    if bigger_cache:
        session.execute(text("PRAGMA cache_size=-2000"))  # SQLite's default again

    counts = writer.counts
    result.divisions, result.dwellings = len(divisions), len(dwellings)
    result.landlords = generator.counts.landlords
    result.residents = counts.get("residents", 0)
    result.tenancies = counts.get("tenancies", 0)
    result.fp_documents = counts.get("fp_documents", 0)
    result.health_records = counts.get("health_records", 0)
    result.key_persons, result.women_15_49 = generator.counts.key_persons, generator.counts.women_15_49
    # Bulk inserts bypass per-row audit events; the seed itself is one audited action (counts only).
    audit.record(session, "demo.seed", detail={
        "divisions": result.divisions, "dwellings": result.dwellings, "users": len(users),
        "landlords": result.landlords, "residents": result.residents, "tenancies": result.tenancies,
        "fp_documents": result.fp_documents, "health_records": result.health_records,
    })
    if with_users:
        result.logins += demo_partners.seed_partners(session, random_password())
    if with_users if with_visits is None else with_visits:
        history = demo_visits.seed_visits(session, seed + 2, now=now)
        result.visits, result.service_deliveries, result.tasks = history.visits, history.deliveries, history.tasks
    return result


def _users(accounts: list[_Account], with_users: bool, now: Any,
           result: DemoResult) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The first MAX_ACCOUNTS accounts by priority, passwords hashed in parallel (argon2 releases the GIL)."""
    chosen = sorted(accounts, key=lambda a: a.priority)[:MAX_ACCOUNTS]
    passwords = [random_password() for _ in chosen]
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        hashes = list(pool.map(hash_password, passwords))
    users: list[dict[str, Any]] = []
    scopes: list[dict[str, Any]] = []
    for acc, password, password_hash in zip(chosen, passwords, hashes, strict=True):
        row = {"id": new_id(), "username": acc.username, "display_name": acc.name, "role": acc.role.value,
               "password_hash": password_hash, "active": True, "must_change_password": False,
               "password_changed_at": now, "created_at": now, "updated_at": now, "version": 1}
        users.append(row)
        scopes.extend({"user_id": row["id"], "division_id": d["id"], "area_path": d["path"]} for d in acc.scope)
        result.logins.append((acc.username, acc.role.value, password))
    return users, scopes
