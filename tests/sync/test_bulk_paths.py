"""Writes made with bulk statements reach phones too: a register import, a dwelling carried to another
community with its residents, a grid moved to another community (division relocation)."""

from __future__ import annotations

from sqlalchemy import Engine, select

from app.people.models import FpDocument, Resident
from tests.conftest import Api, World
from tests.factories import id_number
from tests.people.import_helpers import csv_file, person, upload
from tests.sync.helpers import V1, ids, pull, rows


def test_imported_residents_arrive_at_the_next_pull(api: Api, world: World, engine: Engine) -> None:
    before = pull(api, "worker1")
    records = [person(world), person(world, 姓名="刘洋", 公民身份号码=id_number("20000101", "131"))]
    done = upload(api, "worker1", csv_file(records), dry_run=False)
    assert done.status_code == 201, done.text
    new = {r for (r,) in rows(engine, select(Resident.id).where(
        Resident.id_number.in_([r["公民身份号码"] for r in records])))}  # type: ignore[union-attr]
    assert len(new) == 2
    step = pull(api, "worker1", before["timestamp"])
    assert ids(step, "residents") == new
    other = pull(api, "worker2", device="phone-0002")
    assert not new & ids(other, "residents")


def test_dwelling_carried_to_another_community_moves_its_residents_between_phones(
        api: Api, world: World, engine: Engine) -> None:
    c1, c2 = world.community("c1"), world.community("c2")
    dwelling = next(d for d in world.dwellings[c1["id"]]
                    if rows(engine, select(Resident.id).where(Resident.dwelling_id == d)))
    residents = {r for (r,) in rows(engine, select(Resident.id).where(Resident.dwelling_id == dwelling,
                                                                       Resident.status == "REGISTERED"))}
    docs = {d for (d,) in rows(engine, select(FpDocument.id).where(FpDocument.resident_id.in_(residents)))}  # type: ignore[attr-defined]
    first1, first2 = pull(api, "worker1"), pull(api, "worker2", device="phone-0002")
    assert residents <= ids(first1, "residents") and not residents & ids(first2, "residents")

    moved = api.as_("sup_street", "POST", f"{V1}/dwellings/{dwelling}/move", json={"community_id": c2["id"]})
    assert moved.status_code == 200, moved.text

    gone = pull(api, "worker1", first1["timestamp"])
    assert residents <= ids(gone, "residents", "deleted")
    assert dwelling in ids(gone, "dwellings", "deleted")
    assert docs <= ids(gone, "fp_documents", "deleted")
    arrived = pull(api, "worker2", first2["timestamp"], device="phone-0002")
    assert residents <= ids(arrived, "residents") and dwelling in ids(arrived, "dwellings")
    assert docs <= ids(arrived, "fp_documents")
    assert {r["community_id"] for r in arrived["changes"]["residents"]["updated"] if r["id"] in residents} == {
        c2["id"]}


def test_grid_moved_to_another_community_moves_what_lies_in_it(api: Api, world: World, engine: Engine) -> None:
    c1, c2 = world.community("c1"), world.community("c2")
    grid = world.grids[c1["id"]][0]
    in_grid = {r for (r,) in rows(engine, select(Resident.id).where(
        Resident.area_path.startswith(grid["path"]), Resident.status == "REGISTERED"))}  # type: ignore[attr-defined]
    assert in_grid
    first1, first2 = pull(api, "worker1"), pull(api, "worker2", device="phone-0002")
    assert in_grid <= ids(first1, "residents")

    moved = api.as_("admin", "POST", f"{V1}/divisions/{grid['id']}/move",
                    json={"parent_id": c2["id"], "code": "G07", "version": 1})
    assert moved.status_code == 200, moved.text

    gone = pull(api, "worker1", first1["timestamp"])
    assert in_grid <= ids(gone, "residents", "deleted")
    assert grid["id"] in ids(gone, "divisions", "deleted")
    arrived = pull(api, "worker2", first2["timestamp"], device="phone-0002")
    assert in_grid <= ids(arrived, "residents")
    assert grid["id"] in ids(arrived, "divisions")
    got = {r["id"]: r for r in arrived["changes"]["residents"]["updated"]}
    assert {got[r]["community_id"] for r in in_grid} == {c2["id"]}

