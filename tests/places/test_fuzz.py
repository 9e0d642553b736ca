"""Whatever arrives, the places endpoints answer with a result or a coded 4xx, never a 500."""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Api, World
from tests.places.helpers import DIVISIONS, DWELLINGS, HEADER, upload

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
    st.sampled_from(["410100", "410102001001", "G01", "g-1", "community", "grid", "gated", "rental", "", " ",
                     "0" * 32, "４１０１００", "\u3000", "%", "_", "/", "../", "'; --", "名" * 201]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                            max_size=3), max_leaves=6)
DIVISION_KEYS = ["code", "name", "level", "parent_id", "community_type", "vintage", "active", "version"]
DWELLING_KEYS = ["community_id", "grid_id", "address", "kind", "lat", "lng", "active", "version"]


def bodies(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from([*keys, "extra"]), values, max_size=len(keys))


def assert_handled(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()) == {"code", "message", "details"}, response.text


def refs(world: World) -> dict[str, str]:
    c1 = world.community("c1")
    return {"community_id": c1["id"], "grid_id": world.grids[c1["id"]][0]["id"], "parent_id": c1["parent_id"]}


@FUZZ
@given(body=bodies(DIVISION_KEYS), use_refs=st.booleans())
def test_division_writes(api: Api, world: World, body: dict[str, Any], use_refs: bool) -> None:
    if use_refs and "parent_id" in body:
        body["parent_id"] = refs(world)["parent_id"]
    c1 = world.community("c1")
    assert_handled(api.as_("admin", "POST", DIVISIONS, json=body))
    assert_handled(api.as_("admin", "PATCH", f"{DIVISIONS}/{c1['id']}", json=body))
    assert_handled(api.as_("admin", "POST", f"{DIVISIONS}/{c1['id']}/move", json=body))


@FUZZ
@given(body=bodies(DWELLING_KEYS), use_refs=st.booleans())
def test_dwelling_writes(api: Api, world: World, body: dict[str, Any], use_refs: bool) -> None:
    if use_refs:
        body.update({k: v for k, v in refs(world).items() if k in body})
    dwelling_id = world.dwellings[world.community("c1")["id"]][0]
    assert_handled(api.as_("worker1", "POST", DWELLINGS, json=body))
    assert_handled(api.as_("worker1", "PATCH", f"{DWELLINGS}/{dwelling_id}", json=body))
    assert_handled(api.as_("worker1", "POST", f"{DWELLINGS}/{dwelling_id}/move", json=body))


@FUZZ
@given(params=st.dictionaries(
    st.sampled_from(["parent_id", "level", "q", "active", "limit", "offset", "community_id", "grid_id", "kind",
                     "x"]), st.text(max_size=30), max_size=4),
    path=st.text(max_size=40))
def test_reads(api: Api, params: dict[str, str], path: str) -> None:
    for url in (DIVISIONS, DWELLINGS):
        assert_handled(api.as_("sup_street", "GET", url, params=params))
        assert_handled(api.as_("sup_street", "GET", f"{url}/{quote(path, safe='')}"))


@FUZZ
@given(rows=st.lists(st.lists(st.one_of(st.text(max_size=15), st.sampled_from(
    ["410100", "410199", "410199001", "410199001001", "district", "street", "community", "grid", "城中村", "2024"])),
    min_size=0, max_size=8), max_size=6), header=st.permutations(HEADER))
def test_import_tables(api: Api, rows: list[list[str]], header: list[str]) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    assert_handled(upload(api, out.getvalue().encode("utf-8", "surrogatepass"), query="?dry_run=true"))


@FUZZ
@given(data=st.binary(max_size=300), prefix=st.sampled_from([b"", b"PK\x03\x04", b"\xef\xbb\xbf", b"code,name,"]))
def test_import_bytes(api: Api, data: bytes, prefix: bytes) -> None:
    assert_handled(upload(api, prefix + data, query="?dry_run=true"))
