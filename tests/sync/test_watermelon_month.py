"""A month of verification (月核查) on WatermelonDB phones (tests/interop, schema version 2) against the real
server: opening, outcomes recorded offline on two phones, a conflict on one verification, a refusal for a
missing evidence, a resident who left disappearing from the phones, and the period closed."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from app.cycle.verification.models import Verification
from app.people.models import Resident
from tests.conftest import World
from tests.sync import test_watermelon_interop as interop
from tests.sync.test_watermelon_interop import Phones, Server, assert_converged

# The interop module's fixtures: the real server under uvicorn (one per module) and the Node phones.
server = interop.server
phones = interop.phones


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
