"""Access review, disclosures per partner: counted from the disclosure ledger in the period (and district),
most first, with the residents, field groups and legal bases; exportable as CSV and XLSX, and recorded."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from openpyxl import load_workbook
from sqlalchemy import Engine

from app.core.db import unit_of_work
from app.core.types import city_today, utcnow
from app.sharing.ledger import disclose
from tests.audit.conftest import raw_rows
from tests.conftest import Api, World
from tests.db import execute
from tests.visits import resident

ACCESS = "/api/v1/audit/access"
TODAY = {"from": city_today().isoformat(), "to": city_today().isoformat()}
POLICE_BASIS = "《居住证暂行条例》第十二条"
LANDLORD_BASIS = "《房屋租赁管理办法》"


def share(engine: Engine, kind: str, partner: str, residents: list[tuple[str, str]], groups: list[str],
          basis: str) -> None:
    with unit_of_work(engine=engine) as session:
        disclose(session, partner_kind=kind, partner_id=partner, residents=residents, field_groups=groups,
                 legal_basis=basis)


def test_disclosures_per_partner(api: Api, engine: Engine, world: World) -> None:
    a, b, c = (resident(engine, world, skip=i) for i in range(3))
    district = "410102"
    share(engine, "police", world.users["worker1"], [(a["id"], district), (b["id"], district)],
          ["identity", "residence"], POLICE_BASIS)
    share(engine, "police", world.users["worker1"], [(a["id"], district)], ["identity"], POLICE_BASIS)
    share(engine, "landlord", "landlord-7", [(c["id"], "410105")], ["identity"], LANDLORD_BASIS)
    # Last month's disclosure is outside today's period.
    share(engine, "landlord", "landlord-old", [(c["id"], "410105")], ["identity"], LANDLORD_BASIS)
    execute(engine, "UPDATE disclosures SET disclosed_at = :t WHERE partner_id = 'landlord-old'",
            t=utcnow() - timedelta(days=40))

    summary = api.as_("auditor", "GET", f"{ACCESS}/readers", params=TODAY).json()
    partners = summary["disclosures_per_partner"]
    assert [(p["partner_kind"], p["partner_id"], p["disclosures"], p["residents"]) for p in partners] == [
        ("police", world.users["worker1"], 3, 2), ("landlord", "landlord-7", 1, 1)]
    assert partners[0]["field_groups"] == ["identity", "residence"] and partners[0]["legal_bases"] == [POLICE_BASIS]
    assert partners[0]["partner_name"] == "worker1" and partners[1]["partner_name"] is None
    # The district filter: a disclosure lies in its resident's district.
    only = api.as_("auditor", "GET", f"{ACCESS}/readers", params={**TODAY, "district_code": "410105"}).json()
    assert [p["partner_id"] for p in only["disclosures_per_partner"]] == ["landlord-7"]

    as_csv = api.as_("auditor", "GET", f"{ACCESS}/disclosures/export", params={**TODAY, "format": "csv"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert [(r["partner_kind"], r["disclosures"], r["residents"], r["field_groups"]) for r in table] == [
        ("police", "3", "2", "identity;residence"), ("landlord", "1", "1", "identity")]
    as_xlsx = api.as_("auditor", "GET", f"{ACCESS}/disclosures/export", params={**TODAY, "format": "xlsx"})
    sheet = load_workbook(io.BytesIO(as_xlsx.content)).active
    assert sheet is not None
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0][:5] == ["partner_kind", "partner_id", "partner_name", "disclosures", "residents"]
    assert [v[6] for v in values[1:]] == [POLICE_BASIS, LANDLORD_BASIS]
    exports = [r for r in raw_rows(engine) if r["action"] == "audit.access_export"]
    assert [(e["target_type"], e["detail"]) for e in exports] == [
        ("disclosures", '{"filters": [], "format": "csv", "rows": 2}'),
        ("disclosures", '{"filters": [], "format": "xlsx", "rows": 2}')]
    # The ledger's contents never reach the audit record: no resident ids in the export's event.
    assert all(a["id"] not in (e["detail"] or "") for e in exports)


def test_a_partner_name_that_looks_like_a_formula_is_text(api: Api, engine: Engine, world: World) -> None:
    a = resident(engine, world)
    share(engine, "police", "=HYPERLINK(1)", [(a["id"], "410102")], ["identity"], POLICE_BASIS)
    as_csv = api.as_("auditor", "GET", f"{ACCESS}/disclosures/export", params={**TODAY, "format": "csv"})
    table = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert table[0]["partner_id"] == "'=HYPERLINK(1)"
