"""WatermelonDB's real sync client against the running server (issue 5's interop test).

The app runs under uvicorn on a copy of the migrated test database; tests/interop/phone.js holds simulated
phones (npm @nozbe/watermelondb, LokiJS adapter, in memory) that call WatermelonDB's own `synchronize()` the
way docs/sync.md tells app developers to (tests/interop/sync.js). Each test drives the phones step by step and
checks both the phones and the server's tables.

"Converged" means a phone holds exactly what a brand-new device of the same worker would receive on its first
pull, column for column, with nothing left to push.

Needs Node (>= 18) and `npm ci` in tests/interop (`make interop-deps`, run by `make test`). Without them the
test is skipped locally and fails on CI (REQUIRE_NODE=1, set by .ci/run).
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Boolean, Date, Engine, Float, Integer, func, select
from sqlmodel import Session, col

from app.core.db import create_db_engine, unit_of_work
from app.core.types import UTCDateTime, city_today
from app.cycle.models import Task, TaskKind
from app.cycle.verification.models import Verification
from app.ledger.audit import verify_chain
from app.people.models import Resident, ResidentStatus
from app.sync.models import SyncConflict, SyncDevice, SyncRejection
from app.sync.pull import SUPPORTED_SCHEMA_VERSIONS
from app.sync.wire import MODELS, shape
from app.visits.models import ServiceDelivery, Visit
from tests.conftest import PASSWORD, Databases, World

INTEROP = Path(__file__).resolve().parents[1] / "interop"
NODE = shutil.which("node")
STEP_TIMEOUT = 60.0  # seconds for one phone command (a first sync of a street is the slowest)
V1 = "/api/v1"


def _require_node() -> None:
    missing = []
    if NODE is None:
        missing.append("node is not installed")
    if not (INTEROP / "node_modules" / "@nozbe" / "watermelondb").is_dir():
        missing.append("tests/interop/node_modules is missing (run `make interop-deps`)")
    if missing:
        message = "WatermelonDB interop test cannot run: " + "; ".join(missing)
        if os.environ.get("REQUIRE_NODE") == "1":
            pytest.fail(message)
        pytest.skip(message)


# --- the server ----------------------------------------------------------------------------------------

class Server:
    def __init__(self, base_url: str, engine: Engine) -> None:
        self.base_url = base_url
        self.engine = engine
        self.http = httpx.Client(base_url=base_url, timeout=30.0)
        self.tokens: dict[str, str] = {}

    def token(self, username: str) -> str:
        if username not in self.tokens:
            response = self.http.post(f"{V1}/auth/login", json={"username": username, "password": PASSWORD})
            assert response.status_code == 200, response.text
            self.tokens[username] = response.json()["access_token"]
        return self.tokens[username]

    def call(self, username: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(username)}", **kwargs.pop("headers", {})}
        return self.http.request(method, V1 + url, headers=headers, **kwargs)

    def truth(self, username: str) -> dict[str, dict[str, dict[str, Any]]]:
        """What a brand-new device of this user receives: {table: {id: raw}}."""
        response = self.call(username, "GET", "/sync/pull", params={"last_pulled_at": "null", "schema_version": 4},
                             headers={"X-Device-Id": f"truth-{uuid.uuid4().hex[:12]}", "X-App-Version": "test"})
        assert response.status_code == 200, response.text
        changes = response.json()["changes"]
        assert all(not c["created"] and not c["deleted"] for c in changes.values())
        return {table: {r["id"]: r for r in c["updated"]} for table, c in changes.items()}

    def scalar(self, stmt: Any) -> Any:
        with Session(self.engine) as session:
            return session.execute(stmt).scalar()

    def rows(self, stmt: Any) -> list[Any]:
        with Session(self.engine) as session:
            return list(session.execute(stmt).all())


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


@pytest.fixture(scope="module")
def server(databases: Databases) -> Iterator[Server]:
    """The real app under uvicorn (a subprocess) on its own copy of the test database."""
    _require_node()
    name = f"{databases.run}_interop_{uuid.uuid4().hex[:8]}"
    url = databases.clone_template(name)
    sock = _listening_socket()
    port = sock.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": url, "UVICORN_LOG_LEVEL": "warning"}
    # uvicorn serves on the socket made here (--fd), so no other process can take the port in between.
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--fd", str(sock.fileno()), "--no-access-log",
         "--log-level", "warning"],
        env=env, pass_fds=(sock.fileno(),), stdin=subprocess.DEVNULL,
    )
    sock.close()
    engine = create_db_engine(url)
    srv = Server(f"http://127.0.0.1:{port}", engine)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "uvicorn exited while starting"
            try:
                if srv.http.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "uvicorn did not answer /healthz within 60 s"
            time.sleep(0.1)
        yield srv
    finally:
        srv.http.close()
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    try:
        with unit_of_work(write=False, engine=engine) as session:
            report = verify_chain(session)
        assert report.first_broken_id is None, f"audit chain broken after the interop run: {report}"
    finally:
        engine.dispose()
        databases.drop(name)


# --- the phones ----------------------------------------------------------------------------------------

class Phones:
    """tests/interop/phone.js: one Node process holding every simulated phone."""

    def __init__(self, server: Server) -> None:
        assert NODE is not None
        self.server = server
        self.process = subprocess.Popen(
            [NODE, str(INTEROP / "phone.js")], cwd=INTEROP, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, bufsize=1,
        )
        assert self.process.stdout is not None
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.process.stdout, selectors.EVENT_READ)
        self.seq = 0

    def __call__(self, cmd: str, **args: Any) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.seq += 1
        self.process.stdin.write(json.dumps({"seq": self.seq, "cmd": cmd, **args}) + "\n")
        self.process.stdin.flush()
        if not self.selector.select(timeout=STEP_TIMEOUT):
            raise AssertionError(f"phone command {cmd} did not answer within {STEP_TIMEOUT} s")
        line = self.process.stdout.readline()
        assert line, f"phone.js exited (status {self.process.poll()}) during {cmd}"
        reply = json.loads(line)
        assert reply["seq"] == self.seq
        assert reply["ok"], f"phone command {cmd} failed: {reply['error']}"
        return reply["result"]

    def open(self, name: str, username: str) -> str:
        self("open", phone=name, baseUrl=self.server.base_url, token=self.server.token(username),
             deviceId=f"{name}-{uuid.uuid4().hex[:12]}")
        return name

    def sync(self, name: str, **args: Any) -> dict[str, Any]:
        result: dict[str, Any] = self("sync", phone=name, **args)
        return result

    def synced(self, name: str) -> dict[str, Any]:
        """A sync that must succeed and leave nothing to push."""
        result = self.sync(name)
        assert "error" not in result, result
        assert result["unsynced"] is False
        return result

    def dump(self, name: str) -> dict[str, dict[str, dict[str, Any]]]:
        dump: dict[str, dict[str, dict[str, Any]]] = self("dump", phone=name)
        return dump

    def get(self, name: str, table: str, record_id: str) -> dict[str, Any] | None:
        raw: dict[str, Any] | None = self("get", phone=name, table=table, id=record_id)
        return raw

    def ids(self, name: str, table: str) -> set[str]:
        return set(self("ids", phone=name, table=table))

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.selector.close()


@pytest.fixture()
def phones(server: Server) -> Iterator[Phones]:
    fleet = Phones(server)
    try:
        yield fleet
    finally:
        fleet.close()


def assert_converged(phones: Phones, name: str, username: str) -> None:
    """The phone holds exactly what a new device of the user would get, and has nothing left to push."""
    assert phones("pending", phone=name) == {}
    held, truth = phones.dump(name), phones.server.truth(username)
    assert set(held) == set(truth)
    for table, records in truth.items():
        assert set(held[table]) == set(records), table
        for record_id, raw in records.items():
            mine = held[table][record_id]
            differing = sorted(k for k, v in raw.items() if k != "id" and mine.get(k) != v)
            assert not differing, (table, record_id, differing)


# --- the phone schema ----------------------------------------------------------------------------------

def _wire_type(column: Any) -> str:
    if isinstance(column.type, Boolean):
        return "boolean"
    if isinstance(column.type, Integer | Float | Date | UTCDateTime):
        return "number"
    return "string"


def test_phone_schema_matches_the_wire_columns() -> None:
    """tests/interop/schema.js (what phones declare) against app/sync/wire.py (what the server sends)."""
    _require_node()
    assert NODE is not None
    script = "const { schema } = require('./schema'); process.stdout.write(JSON.stringify(schema))"
    done = subprocess.run([NODE, "-e", script], cwd=INTEROP, capture_output=True, text=True, timeout=60, check=True)
    declared = json.loads(done.stdout)
    assert declared["version"] == 4 == max(SUPPORTED_SCHEMA_VERSIONS)
    assert set(declared["tables"]) == set(MODELS)
    for table in MODELS:
        expected = {c.name: {"name": c.name, "type": _wire_type(c), **({"isOptional": True} if c.nullable else {})}
                    for c in shape(table).columns if c.name != "id"}
        columns = declared["tables"][table]["columns"]
        assert {n: {k: v for k, v in c.items() if k in ("name", "type", "isOptional")} for n, c in columns.items()} \
            == expected, table


# --- scenarios -----------------------------------------------------------------------------------------

def _registered_in(server: Server, community: dict[str, Any]) -> set[str]:
    return {r for (r,) in server.rows(
        select(col(Resident.id)).where(col(Resident.community_id) == community["id"],
                                       col(Resident.status) == ResidentStatus.registered.value,
                                       col(Resident.merged_into_id).is_(None)))}


def test_first_sync_of_two_phones(server: Server, phones: Phones, world: World) -> None:
    c1, c2 = world.community("c1"), world.community("c2")
    a, b = phones.open("first-a", "worker1"), phones.open("first-b", "worker2")
    for name in (a, b):
        result = phones.synced(name)
        assert result["pushed"] is None  # nothing to push on a new phone
    assert_converged(phones, a, "worker1")
    assert_converged(phones, b, "worker2")
    # Each phone holds its own community's register and nothing of the neighbour's.
    assert phones.ids(a, "residents") == _registered_in(server, c1) != set()
    assert phones.ids(b, "residents") == _registered_in(server, c2) != set()
    assert phones.ids(a, "service_items") == phones.ids(b, "service_items") != set()
    # A second sync with nothing changed anywhere changes nothing and pushes nothing.
    before = phones("count", phone=a)
    assert phones.synced(a)["pushed"] is None
    assert phones("count", phone=a) == before
    # Both devices were registered with the app's version and schema version.
    devices = server.rows(select(col(SyncDevice.user_id), col(SyncDevice.app_version), col(SyncDevice.schema_version),
                                 col(SyncDevice.pulls)).where(col(SyncDevice.device_id).startswith("first-")))
    assert sorted(devices) == sorted([(world.users["worker1"], "1.0.0-interop", 4, 2),
                                      (world.users["worker2"], "1.0.0-interop", 4, 1)])


def test_resident_moving_out_of_scope(server: Server, phones: Phones, world: World) -> None:
    c1, c2 = world.community("c1"), world.community("c2")
    a, b = phones.open("move-a", "worker1"), phones.open("move-b", "worker2")
    phones.synced(a)
    phones.synced(b)
    resident_id = sorted(phones.ids(a, "residents"))[0]
    held = phones.get(a, "residents", resident_id)
    assert held is not None and held["community_id"] == c1["id"]
    assert phones.get(b, "residents", resident_id) is None

    moved = server.call("sup_street", "POST", f"/residents/{resident_id}/move", json={
        "version": held["version"], "dwelling_id": world.dwellings[c2["id"]][0],
        "moved_on": city_today().isoformat()})
    assert moved.status_code == 200, moved.text

    phones.synced(a)
    phones.synced(b)
    assert resident_id not in phones.ids(a, "residents")
    arrived = phones.get(b, "residents", resident_id)
    assert arrived is not None and arrived["community_id"] == c2["id"]
    assert arrived["version"] == held["version"] + 1
    assert_converged(phones, a, "worker1")
    assert_converged(phones, b, "worker2")


# --- offline work pushed back ----------------------------------------------------------------------------

def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _day_ms(day: date) -> int:
    return (day - date(1970, 1, 1)).days * 86_400_000


def _resident_with_dwelling(phones: Phones, name: str) -> dict[str, Any]:
    """A resident on the phone who lives in a dwelling with coordinates."""
    held = phones.dump(name)
    for record_id in sorted(held["residents"]):
        resident = held["residents"][record_id]
        dwelling = held["dwellings"].get(resident["dwelling_id"] or "")
        if dwelling and dwelling["lat"] is not None:
            return {**resident, "dwelling": dwelling}
    raise AssertionError("no resident with a located dwelling on the phone")


def _offline_visit(phones: Phones, name: str, worker_id: str, resident: dict[str, Any]) -> dict[str, Any]:
    """A met in-person visit recorded on the phone, with two services handed out and a follow-up task:
    what a worker does in a flat with no signal. Returns the local ids."""
    items = [i for i in phones.dump(name)["service_items"].values() if i["retired_in_version"] is None]
    items.sort(key=lambda i: i["sort_order"])
    assert len(items) >= 2
    catalog_version = max(max(i["since_version"], i["retired_in_version"] or 0) for i in items)
    started = datetime.now(UTC) - timedelta(minutes=40)
    dwelling = resident["dwelling"]
    visit = phones("create", phone=name, table="visits", fields={
        "resident_id": resident["id"], "worker_id": worker_id, "community_id": resident["community_id"],
        "dwelling_id": dwelling["id"], "mode": "in_person", "purpose": "routine", "outcome": "met",
        "started_at": _ms(started), "ended_at": _ms(started + timedelta(minutes=20)),
        "notes": json.dumps(["documents_checked"]), "catalog_version": catalog_version,
        "lat": dwelling["lat"], "lng": dwelling["lng"], "coord_system": "wgs84", "accuracy_m": 8.0,
        "provider": "gps", "mock_location": False, "fix_time": _ms(started), "flags": "[]",
        "review_state": "submitted",
    })
    deliveries = [phones("create", phone=name, table="service_deliveries", fields={
        "visit_id": visit["id"], "resident_id": resident["id"], "item_id": item["id"], "item_code": item["code"],
        "quantity": quantity, "notes": json.dumps(["first_time"]), "delivered_on": _day_ms(city_today()),
    }) for item, quantity in zip(items[:2], (1, 2), strict=True)]
    task = phones("create", phone=name, table="tasks", fields={
        "resident_id": resident["id"], "community_id": resident["community_id"], "kind": "follow_up",
        "due_date": _day_ms(city_today() + timedelta(days=7)), "state": "open", "reason": "deliver_service",
    })
    return {"visit": visit["id"], "deliveries": sorted(d["id"] for d in deliveries), "task": task["id"],
            "quantities": {d["id"]: d["quantity"] for d in deliveries}}


def _visit_rows(server: Server, resident_id: str) -> tuple[list[Any], list[Any], list[Any]]:
    visits = server.rows(select(col(Visit.id), col(Visit.worker_id), col(Visit.outcome))
                         .where(col(Visit.resident_id) == resident_id))
    deliveries = server.rows(select(col(ServiceDelivery.id), col(ServiceDelivery.visit_id),
                                    col(ServiceDelivery.quantity))
                             .where(col(ServiceDelivery.resident_id) == resident_id))
    tasks = server.rows(select(col(Task.id), col(Task.kind), col(Task.state), col(Task.created_by))
                        .where(col(Task.resident_id) == resident_id, col(Task.kind) == TaskKind.follow_up.value))
    return visits, deliveries, tasks


def test_offline_edits_on_two_phones(server: Server, phones: Phones, world: World) -> None:
    a, b = phones.open("edits-a", "worker1"), phones.open("edits-b", "worker2")
    phones.synced(a)
    phones.synced(b)
    mine = _resident_with_dwelling(phones, a)
    theirs = sorted(phones.ids(b, "residents"))[0]
    # Offline: worker1 updates a resident's contact and work, records a visit with two services and a
    # follow-up; worker2 updates another resident's employer.
    phones("update", phone=a, table="residents", id=mine["id"], fields={"phone": "13912345678", "occupation": "厨师"})
    local = _offline_visit(phones, a, world.users["worker1"], mine)
    phones("update", phone=b, table="residents", id=theirs, fields={"employer": "郑州市某物流有限公司"})
    assert phones("pending", phone=a) == {
        "residents": {"created": [], "updated": [mine["id"]], "deleted": []},
        "visits": {"created": [local["visit"]], "updated": [], "deleted": []},
        "service_deliveries": {"created": local["deliveries"], "updated": [], "deleted": []},
        "tasks": {"created": [local["task"]], "updated": [], "deleted": []},
    }

    pushed_a, pushed_b = phones.synced(a), phones.synced(b)
    assert pushed_a["rejected"] == [] and pushed_b["rejected"] == []
    assert pushed_a["pushed"] == {"residents": {"created": 0, "updated": 1, "deleted": 0},
                                  "visits": {"created": 1, "updated": 0, "deleted": 0},
                                  "service_deliveries": {"created": 2, "updated": 0, "deleted": 0},
                                  "tasks": {"created": 1, "updated": 0, "deleted": 0}}

    # The server has it all, under the phone's ids, attributed to the worker.
    resident = server.rows(select(col(Resident.phone), col(Resident.occupation), col(Resident.version))
                           .where(col(Resident.id) == mine["id"]))[0]
    assert resident == ("13912345678", "厨师", mine["version"] + 1)
    assert server.scalar(select(col(Resident.employer)).where(col(Resident.id) == theirs)) == "郑州市某物流有限公司"
    visits, deliveries, tasks = _visit_rows(server, mine["id"])
    assert (local["visit"], world.users["worker1"], "met") in visits
    assert {d: q for d, v, q in deliveries if v == local["visit"]} == local["quantities"]
    assert (local["task"], "follow_up", "open", world.users["worker1"]) in tasks

    # Another round: each phone gets what the server made of the pushes (check-in flags, received_at,
    # versions) and ends up equal to the server.
    phones.synced(a)
    phones.synced(b)
    assert_converged(phones, a, "worker1")
    assert_converged(phones, b, "worker2")
    assert phones.get(a, "visits", local["visit"])["received_at"] > 0  # type: ignore[index]


def test_conflicting_edits_of_the_same_field(server: Server, phones: Phones, world: World) -> None:
    a, s = phones.open("conflict-a", "worker1"), phones.open("conflict-s", "sup_street")
    phones.synced(a)
    phones.synced(s)
    resident_id = sorted(phones.ids(a, "residents"))[1]
    assert resident_id in phones.ids(s, "residents")
    phones("update", phone=a, table="residents", id=resident_id, fields={"occupation": "电工"})
    phones("update", phone=s, table="residents", id=resident_id, fields={"occupation": "司机", "employer": "某车队"})

    first, second = phones.synced(a), phones.synced(s)  # both succeed: nothing is refused
    assert first["rejected"] == [] and second["rejected"] == []
    stored = server.rows(select(col(Resident.occupation), col(Resident.employer))
                         .where(col(Resident.id) == resident_id))[0]
    assert stored == ("司机", "某车队")  # the later push's changed fields are applied
    conflicts = server.rows(select(col(SyncConflict.fields), col(SyncConflict.server_values),
                                   col(SyncConflict.client_values), col(SyncConflict.user_id))
                            .where(col(SyncConflict.table_name) == "residents",
                                   col(SyncConflict.record_id) == resident_id))
    assert len(conflicts) == 1  # employer was changed on one side only: no conflict for it
    fields, server_values, client_values, user_id = conflicts[0]
    assert json.loads(fields) == ["occupation"]
    assert json.loads(server_values)["occupation"] == "电工"  # the overwritten edit is kept
    assert json.loads(client_values)["occupation"] == "司机"
    assert user_id == world.users["sup_street"]

    # Both phones converge on the server's value at their next sync.
    phones.synced(a)
    phones.synced(s)
    for name in (a, s):
        held = phones.get(name, "residents", resident_id)
        assert held is not None and (held["occupation"], held["employer"]) == stored
    assert_converged(phones, a, "worker1")
    assert_converged(phones, s, "sup_street")


def test_editing_a_field_again_is_no_conflict(server: Server, phones: Phones, world: World) -> None:
    """A phone's own earlier push comes back in its next pull: editing the same field again in the next sync
    overwrites nobody's edit, so no conflict is recorded."""
    a = phones.open("again-a", "worker1")
    phones.synced(a)
    resident_id = sorted(phones.ids(a, "residents"))[3]
    phones("update", phone=a, table="residents", id=resident_id, fields={"phone": "13700000001"})
    phones.synced(a)
    phones("update", phone=a, table="residents", id=resident_id, fields={"phone": "13700000002"})
    phones.synced(a)
    assert server.scalar(select(col(Resident.phone)).where(col(Resident.id) == resident_id)) == "13700000002"
    assert server.scalar(select(func.count()).select_from(SyncConflict)
                         .where(col(SyncConflict.record_id) == resident_id)) == 0
    phones.synced(a)  # brings back what the server made of the last push (version, updated_at)
    assert_converged(phones, a, "worker1")


def test_push_retried_after_its_response_was_lost(server: Server, phones: Phones, world: World) -> None:
    a = phones.open("retry-a", "worker1")
    phones.synced(a)
    mine = _resident_with_dwelling(phones, a)
    # A change for sure: the demo world gives one resident in twenty or so this occupation already, and an update
    # that changes nothing bumps no version (this test failed so, now and then, until 2026-12-06).
    occupation = "快递员" if mine["occupation"] != "快递员" else "保安"
    phones("update", phone=a, table="residents", id=mine["id"], fields={"occupation": occupation})
    local = _offline_visit(phones, a, world.users["worker1"], mine)
    before = _visit_rows(server, mine["id"])

    lost = phones.sync(a, loseResponse=True)
    assert lost["error"] == "push response lost (simulated)"
    assert lost["unsynced"] is True  # the phone still thinks nothing was pushed
    applied = _visit_rows(server, mine["id"])  # ... but the server applied it
    version = server.scalar(select(col(Resident.version)).where(col(Resident.id) == mine["id"]))
    # The refusals the server stored, if it did not apply the update, say why.
    with Session(server.engine) as session:
        refused = list(session.execute(select(col(SyncRejection.code)).where(
            col(SyncRejection.record_id) == mine["id"])).scalars())
    assert version == mine["version"] + 1, (lost, refused)
    assert [len(x) - len(y) for x, y in zip(applied, before, strict=True)] == [1, 2, 1]

    retried = phones.synced(a)  # the same records again: accepted, and nothing doubles
    assert retried["rejected"] == []
    assert retried["pushed"] == lost["pushed"]
    assert _visit_rows(server, mine["id"]) == applied
    assert server.scalar(select(col(Resident.version)).where(col(Resident.id) == mine["id"])) == version
    assert server.scalar(select(func.count()).select_from(Visit).where(col(Visit.id) == local["visit"])) == 1
    phones.synced(a)
    assert_converged(phones, a, "worker1")


def test_local_delete_after_a_push_is_not_undone(server: Server, phones: Phones, world: World) -> None:
    a = phones.open("delete-a", "worker1")
    phones.synced(a)
    resident_id = sorted(phones.ids(a, "residents"))[2]
    task = phones("create", phone=a, table="tasks", fields={
        "resident_id": resident_id, "community_id": world.community("c1")["id"], "kind": "follow_up",
        "due_date": _day_ms(city_today() + timedelta(days=3)), "state": "open", "reason": "document_check",
    })
    phones.synced(a)  # pushed: the server logged it after this sync's pull, so the next pull sends it back
    assert server.scalar(select(col(Task.state)).where(col(Task.id) == task["id"])) == "open"

    phones("delete", phone=a, table="tasks", id=task["id"])
    assert phones("pending", phone=a) == {"tasks": {"created": [], "updated": [], "deleted": [task["id"]]}}
    deleting = phones.synced(a)
    assert deleting["rejected"] == []
    assert task["id"] not in phones.ids(a, "tasks")
    # The server withdrew the follow-up (tasks are cancelled, never erased) ...
    assert server.rows(select(col(Task.state), col(Task.cancelled_by)).where(col(Task.id) == task["id"])) == [
        ("cancelled", world.users["worker1"])]
    # ... and no later pull brings it back to the phone.
    phones.synced(a)
    phones.synced(a)
    assert phones.get(a, "tasks", task["id"]) is None
    assert_converged(phones, a, "worker1")


def test_an_edit_after_a_quiet_pull_is_no_conflict(server: Server, phones: Phones, world: World) -> None:
    """Phone B pulls phone A's edit, syncs again with nothing new (a quiet pull, which writes nothing), then
    edits the same field and syncs: B overwrote a value it had seen, so no conflict is recorded."""
    a, b = phones.open("quiet-a", "worker1"), phones.open("quiet-b", "sup_street")
    phones.synced(a)
    phones.synced(b)
    resident_id = sorted(phones.ids(a, "residents"))[5]
    phones("update", phone=a, table="residents", id=resident_id, fields={"occupation": "电工"})
    phones.synced(a)
    phones.synced(b)  # B receives A's edit
    assert phones.get(b, "residents", resident_id)["occupation"] == "电工"  # type: ignore[index]
    phones.synced(b)  # nothing new
    phones.synced(b)  # nothing new again: a quiet pull
    phones("update", phone=b, table="residents", id=resident_id, fields={"occupation": "木工"})
    assert phones.synced(b)["rejected"] == []
    assert server.scalar(select(col(Resident.occupation)).where(col(Resident.id) == resident_id)) == "木工"
    assert server.scalar(select(func.count()).select_from(SyncConflict)
                         .where(col(SyncConflict.record_id) == resident_id)) == 0
    phones.synced(a)
    phones.synced(b)
    assert_converged(phones, a, "worker1")
    assert_converged(phones, b, "sup_street")


def test_an_app_with_uuid_ids_converges(server: Server, phones: Phones, world: World) -> None:
    """An app that installs a UUID generator: its visits, deliveries and tasks are taken; a resident or a
    dwelling it creates is refused by name (`id_not_accepted`) and removed from the phone at the next sync,
    together with the records that point at it; nothing is left pending."""
    u = phones.open("uuid-a", "worker1")
    phones.synced(u)
    mine = _resident_with_dwelling(phones, u)
    phones("ids-as", kind="uuid")
    try:
        local = _offline_visit(phones, u, world.users["worker1"], mine)
        resident = phones("create", phone=u, table="residents", fields={
            "community_id": mine["community_id"], "dwelling_id": mine["dwelling_id"], "name": "新来者",
            "id_number": mine["id_number"][:6] + "19900101" + "0023", "hukou_code": "411702",
            "arrival_date": _day_ms(city_today()), "status": "REGISTERED", "key_person": False,
            "marital_status": "unknown"})
    finally:
        phones("ids-as", kind="default")
    assert len(local["visit"]) == 36 and len(resident["id"]) == 36
    pushed = phones.sync(u)
    assert "error" not in pushed, pushed
    refused = {(r["table"], r["id"]): r["code"] for r in pushed["rejected"]}
    assert refused == {("residents", resident["id"]): "id_not_accepted"}
    visits, deliveries, tasks = _visit_rows(server, mine["id"])
    assert any(v == local["visit"] for v, _, _ in visits)
    assert {d for d, v, _ in deliveries if v == local["visit"]} == set(local["deliveries"])
    assert any(t == local["task"] for t, *_ in tasks)
    phones.synced(u)
    assert resident["id"] not in phones.ids(u, "residents")
    assert_converged(phones, u, "worker1")


# --- a month of verification (月核查, docs/cycle.md): last, as it opens a month on the module's server --------

def _pending(phones: Phones, phone: str) -> list[dict[str, Any]]:
    held = phones.dump(phone)["verifications"]
    return sorted((v for v in held.values() if v["outcome"] is None), key=lambda v: v["id"])


def test_a_month_verified_offline_on_two_phones(server: Server, phones: Phones, world: World) -> None:
    opened = server.call("admin", "POST", "/cycle/open", json={})
    assert opened.status_code == 200, opened.text
    a, b = phones.open("month-a", "worker1"), phones.open("month-b", "sup_street")
    phones.synced(a)
    phones.synced(b)
    c1 = world.community("c1")
    pending = _pending(phones, a)
    assert pending and all(v["community_id"] == c1["id"] for v in pending)
    [period] = [p for p in phones.dump(a)["periods"].values() if p["id"] == pending[0]["period_id"]]
    assert period["state"] == "open"
    v1, v2, v3, v4 = pending[:4]
    # A partner (the police) proposes LEFT_CITY for v3; the supervisor's phone receives it and confirms offline.
    proposed = server.call("admin", "POST", "/cycle/proposals", json={
        "resident_id": v3["resident_id"], "outcome": "LEFT_CITY", "source": "police"})
    assert proposed.status_code == 200, proposed.text
    phones.synced(b)
    held = phones.dump(b)["verifications"][v3["id"]]
    assert (held["proposed_outcome"], held["proposed_source"], held["outcome"]) == ("LEFT_CITY", "police", None)

    # Offline: both phones verify v1 (a conflict); the worker also v2 and v4 (no evidence), the supervisor v3.
    phones("update", phone=a, table="verifications", id=v1["id"], fields={"outcome": "PRESENT", "evidence": "phone"})
    phones("update", phone=a, table="verifications", id=v2["id"],
           fields={"outcome": "NOT_FOUND", "evidence": "phone"})
    phones("update", phone=a, table="verifications", id=v4["id"], fields={"outcome": "PRESENT"})
    phones("update", phone=b, table="verifications", id=v1["id"],
           fields={"outcome": "NOT_FOUND", "evidence": "phone"})
    phones("update", phone=b, table="verifications", id=v3["id"],
           fields={"outcome": "LEFT_CITY", "evidence": "partner"})

    first = phones.synced(a)
    assert first["pushed"] == {"verifications": {"created": 0, "updated": 3, "deleted": 0}}
    assert [(r["id"], r["code"]) for r in first["rejected"]] == [(v4["id"], "evidence_missing")]
    second = phones.synced(b)
    assert [(r["id"], r["code"]) for r in second["rejected"]] == [(v1["id"], "verification_recorded")]

    stored = dict(server.rows(select(col(Verification.id), col(Verification.outcome)).where(
        col(Verification.id).in_([v1["id"], v2["id"], v3["id"], v4["id"]]))))
    assert stored == {v1["id"]: "PRESENT", v2["id"]: "NOT_FOUND", v3["id"]: "LEFT_CITY", v4["id"]: None}
    left = server.rows(select(col(Resident.status), col(Resident.left_reason)).where(
        col(Resident.id) == v3["resident_id"]))
    assert left == [("LEFT", "left_city")]

    # The next round converges both phones on the server's truth: v1 is PRESENT on the supervisor's phone too,
    # v4 is pending again, and the resident who left is gone from the register on both phones.
    phones.synced(a)
    phones.synced(b)
    assert phones.get(b, "verifications", v1["id"])["outcome"] == "PRESENT"  # type: ignore[index]
    assert phones.get(a, "verifications", v4["id"])["outcome"] is None  # type: ignore[index]
    assert v3["resident_id"] not in phones.ids(a, "residents") | phones.ids(b, "residents")
    assert_converged(phones, a, "worker1")
    assert_converged(phones, b, "sup_street")

    # The supervisor closes the period; an outcome recorded afterwards is refused and undone on the phone.
    closed = server.call("sup_street", "POST", f"/cycle/periods/{period['id']}/close",
                         json={"version": period["version"]})
    assert closed.status_code == 200, closed.text
    phones("update", phone=a, table="verifications", id=v4["id"], fields={"outcome": "PRESENT", "evidence": "phone"})
    late = phones.synced(a)
    assert [(r["id"], r["code"]) for r in late["rejected"]] == [(v4["id"], "period_closed")]
    phones.synced(a)
    assert phones.get(a, "periods", period["id"])["state"] == "closed"  # type: ignore[index]
    assert phones.get(a, "verifications", v4["id"])["outcome"] is None  # type: ignore[index]
    assert_converged(phones, a, "worker1")
