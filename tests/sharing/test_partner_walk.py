"""Walks every partner-facing route (everything under /api/v1/partner) as its partner kind — a police station, an
outflow city, a landlord — with records inside and outside its jurisdiction (another station's district, another
city's 户籍地 prefix, another landlord's dwelling), and checks every JSON object of every answer: only the keys the
kind may receive (its profile's fields and the documented envelope), no health, visit or service field, and no
record (id, ID number, name) of anyone outside. Narrowing a profile removes its fields from every answer.

The routes come from the app's route table: a partner route added without a case here fails
`test_every_partner_route_has_a_walk_case`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any

import pytest
from sqlalchemy import Engine

from app.core.config import get_settings
from app.core.routes import api_routes
from app.core.types import city_today
from app.main import app
from tests.assertions import ok
from tests.conftest import PASSWORD, Api, World
from tests.cycle.assist_helpers import act, draft, incoming
from tests.db import rows
from tests.factories import dwelling_id, id_number, phone_visit_body, post_visit, register_resident, valid_id
from tests.people.rec_helpers import put_health, valid_doc
from tests.sharing.landlord_helpers import Landlord, confirmed_landlord, free_dwellings, move_in_body, register_body
from tests.sharing.partner_helpers import TOKEN_URL, Client, bearer, make_client
from tests.sharing.police_helpers import send, to_csv
from tests.sharing.walk_helpers import (
    PARTNER,
    V1,
    allowed_keys,
    check,
    every_resident,
    outside_outflow,
    outside_police,
)

PREFIX, OTHER_PREFIX = "1301", "1302"  # 石家庄 and 唐山: no demo resident comes from either
ASSISTANCE = PARTNER + "/outflow/assistance-requests"
LANDLORD = PARTNER + "/landlord"


@dataclass
class Walk:
    api: Api
    world: World
    engine: Engine
    station: Client
    station_paths: list[str]
    city: Client
    landlord: Landlord
    other: Landlord
    inside: dict[str, dict[str, Any]] = field(default_factory=dict)
    outside: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What the partner filed itself (its own assistance request about someone it does not cover): its own
    # records show it back.
    own: set[str] = field(default_factory=set)
    extra_outside: set[str] = field(default_factory=set)  # another landlord's dwelling, tenancy, tenant's name
    run: int = 0
    seq: Any = field(default_factory=lambda: count(400))

    def police(self) -> dict[str, str]:
        return bearer(self.api, self.station)

    def outflow(self) -> dict[str, str]:
        return bearer(self.api, self.city)

    def city_person(self, community: str = "c1") -> dict[str, Any]:
        """A new resident of the outflow city (户籍地 130102), registered in `community`."""
        seq = f"{next(self.seq):03d}"
        user = {"c1": "worker1", "c3": "worker3"}[community]
        made = register_resident(self.api, user, dwelling_id(self.world, community, 2),
                                 id_number=id_number(birth="19930707", seq=seq, area="130102"),
                                 hukou_code="130102", name="城民" + seq, phone=None)
        self.inside["city" + seq] = made
        return made

    def sent_request(self, person: dict[str, Any], topic: str = "residence",
                     user: str = "worker1") -> dict[str, Any]:
        return act(self.api, user, draft(self.api, person["id"], topic=topic, user=user), "send")


Responses = list[Any]
Case = Callable[[Walk], Responses]


# --- police --------------------------------------------------------------------------------------------------

def police_token(w: Walk) -> Responses:
    return [w.api.client.post(TOKEN_URL, data={"grant_type": "client_credentials", "client_id": w.station.client_id,
                                               "client_secret": w.station.secret})]


def police_lookup(w: Walk) -> Responses:
    headers = w.police()
    people = [p for p in (*w.inside.values(), *w.outside.values()) if "id_number" in p]  # residents
    answers = [w.api.client.post(PARTNER + "/police/lookup", json={"id_number": p["id_number"]}, headers=headers)
               for p in people]
    assert {a.status_code for a in answers} == {200, 404}
    return answers


def police_feed(w: Walk) -> Responses:
    headers, answers, cursor = w.police(), [], None
    for limit in (2, 500):
        while True:
            answers.append(w.api.client.post(PARTNER + "/police/feed", json={"cursor": cursor, "limit": limit},
                                             headers=headers))
            page = ok(answers[-1])
            cursor = page["cursor"]
            if not page["has_more"]:
                break
        cursor = None
    return answers


def police_upload(w: Walk) -> Responses:
    c1, c3 = w.world.community("c1"), w.world.community("c3")
    here, far = w.inside["police_c1"], w.outside["police_c3"]
    address = rows(w.engine, "SELECT address FROM dwellings WHERE id = :d", d=here["dwelling_id"])[0]["address"]
    data = to_csv([
        {"kind": "registration", "id_number": here["id_number"], "name": here["name"], "sex": "女",
         "community_code": c1["code"], "address": address, "date": "2026-11-20"},
        # Someone registered in another district, reported in the station's own community and in the other one.
        {"kind": "deregistration", "id_number": far["id_number"], "name": far["name"], "sex": "",
         "community_code": c1["code"], "address": "", "date": "2026-11-20"},
        {"kind": "registration", "id_number": id_number(seq="992"), "name": "远方人", "sex": "",
         "community_code": c3["code"], "address": "某路1号", "date": "2026-11-20"},
    ])
    headers = w.police()
    answers = [send(w.api, headers, data, f"walk-{w.run}", dry_run=True), send(w.api, headers, data, f"walk-{w.run}")]
    assert [a.status_code for a in answers] == [200, 201], answers[-1].text
    return answers


# --- outflow city ----------------------------------------------------------------------------------------------

def outflow_token(w: Walk) -> Responses:
    return [w.api.client.post(TOKEN_URL, data={"grant_type": "client_credentials", "client_id": w.city.client_id,
                                               "client_secret": w.city.secret})]


def outflow_pages(w: Walk, url: str) -> Responses:
    headers, answers, cursor = w.outflow(), [], None
    while True:
        answers.append(w.api.client.post(url, json={"cursor": cursor, "limit": 2}, headers=headers))
        page = ok(answers[-1])
        cursor = page["cursor"]
        if not page["has_more"]:
            return answers


def outflow_roster(w: Walk) -> Responses:
    return outflow_pages(w, PARTNER + "/outflow/residents")


def outflow_feed(w: Walk) -> Responses:
    return outflow_pages(w, PARTNER + "/outflow/feed")


def assistance_list(w: Walk) -> Responses:
    headers = w.outflow()
    answers = [w.api.client.get(ASSISTANCE, params=p, headers=headers)
               for p in ({}, {"direction": "outgoing"}, {"direction": "incoming"}, {"state": ["sent", "overdue"]})]
    assert ok(answers[0])["total"] >= 2
    return answers


def assistance_send(w: Walk) -> Responses:
    headers = w.outflow()
    mine, far = w.inside["city_c3"], w.outside["other_city"]
    bodies = [{"reference": f"SJZ-{w.run}-1", "id_number": mine["id_number"], "name": mine["name"],
               "topic": "fp_certificate", "urgent": False},
              # A person registered here, but from another city: answered `unmatched`, as for a stranger.
              {"reference": f"SJZ-{w.run}-2", "id_number": far["id_number"], "name": far["name"],
               "topic": "residence", "urgent": False}]
    w.own |= {far["id_number"], far["name"]}
    answers = [w.api.client.post(ASSISTANCE, json=b, headers=headers) for b in bodies]
    assert [ok(a, 201)["state"] for a in answers] == ["matched", "unmatched"]
    return answers


def assistance_get(w: Walk) -> Responses:
    headers = w.outflow()
    answers = [w.api.client.get(f"{ASSISTANCE}/{w.inside['request']['id']}", headers=headers),
               w.api.client.get(f"{ASSISTANCE}/{w.outside['request']['id']}", headers=headers),
               w.api.client.get(f"{ASSISTANCE}/{w.outside['incoming']['id']}", headers=headers)]
    assert [a.status_code for a in answers] == [200, 404, 404]
    return answers


def assistance_progress(w: Walk) -> Responses:
    headers, sent = w.outflow(), w.sent_request(w.city_person())
    url = ASSISTANCE + "/{}/progress"
    answers = [w.api.client.post(url.format(sent["id"]), json={"state": "matched", "version": sent["version"]},
                                 headers=headers),
               w.api.client.post(url.format(w.outside["request"]["id"]), json={
                   "state": "matched", "version": w.outside["request"]["version"]}, headers=headers)]
    assert [a.status_code for a in answers] == [200, 404]
    return answers


def assistance_answer(w: Walk) -> Responses:
    headers, sent = w.outflow(), w.sent_request(w.city_person())
    url = ASSISTANCE + "/{}/{}"
    steps = []
    for state in ("matched", "verifying"):
        steps.append(w.api.client.post(url.format(sent["id"], "progress"), headers=headers,
                                       json={"state": state, "version": ok(steps[-1])["version"] if steps
                                             else sent["version"]}))
    body = {"finding": "confirmed", "note": "已核实"}
    answers = [w.api.client.post(url.format(sent["id"], "answer"), headers=headers,
                                 json={**body, "version": ok(steps[-1])["version"]}),
               w.api.client.post(url.format(w.outside["request"]["id"], "answer"),
                                 json={**body, "version": w.outside["request"]["version"]}, headers=headers)]
    assert [a.status_code for a in answers] == [200, 404]
    assert ok(answers[0])["finding"] == "confirmed" and "已核实" not in answers[0].text  # the note stays here
    return steps + answers


# --- landlords -------------------------------------------------------------------------------------------------

def landlord_register(w: Walk) -> Responses:
    fresh = register_body(w.world, phone="13912340077", id_number=valid_id("41010519700101093"), name="房东戊",
                          address="文化路96号")
    taken = register_body(w.world, phone=w.other.phone, id_number=valid_id("41010519700101114"), name="房东己",
                          address="文化路98号")  # another landlord's phone: the same answer, nothing said
    answers = [w.api.client.post(LANDLORD + "/register", json=b) for b in (fresh, taken)]
    assert [a.status_code for a in answers] == [202, 202] and answers[0].json() == answers[1].json()
    return answers


def as_landlord(w: Walk, method: str, path: str, **kwargs: Any) -> Any:
    return w.api.as_(w.landlord.phone, method, LANDLORD + path, **kwargs)


def landlord_me(w: Walk) -> Responses:
    return [as_landlord(w, "GET", "/me")]


def landlord_claim(w: Walk) -> Responses:
    body = {"community_id": w.world.community("c1")["id"], "address": "文化路100号"}
    return [as_landlord(w, "POST", "/dwelling-registrations", json=body)]


def landlord_claims(w: Walk) -> Responses:
    return [as_landlord(w, "GET", "/dwelling-registrations")]


def landlord_dwellings(w: Walk) -> Responses:
    answers = [as_landlord(w, "GET", "/dwellings")]
    assert [d["id"] for d in ok(answers[0])["items"]] == [w.landlord.dwelling_id]
    return answers


def landlord_move_in(w: Walk) -> Responses:
    tenant = w.inside["tenant2"]
    answers = [as_landlord(w, "POST", "/move-ins", json=move_in_body(
                   w.landlord.dwelling_id, name=tenant["name"], id_number=tenant["id_number"], phone=None)),
               as_landlord(w, "POST", "/move-ins", json=move_in_body(w.other.dwelling_id, name="某人",
                                                                      id_number=valid_id("41160219950505037")))]
    assert [a.status_code for a in answers] == [201, 404]
    return answers


def landlord_move_out(w: Walk) -> Responses:
    tenancies = {t["name"]: t["tenancy_id"] for t in ok(as_landlord(w, "GET", "/tenants"))["items"]}
    answers = [as_landlord(w, "POST", "/move-outs", json={"tenancy_id": tenancies[w.inside["tenant2"]["name"]],
                                                           "moved_out_on": "2026-11-25"}),
               as_landlord(w, "POST", "/move-outs", json={"tenancy_id": w.outside["tenancy"]["id"],
                                                           "moved_out_on": "2026-11-25"})]
    assert [a.status_code for a in answers] == [201, 404]
    return answers


def landlord_reports(w: Walk) -> Responses:
    return [as_landlord(w, "GET", "/reports")]


def landlord_tenants(w: Walk) -> Responses:
    answers = [as_landlord(w, "GET", "/tenants")]
    assert w.inside["tenant1"]["name"] in {t["name"] for t in ok(answers[0])["items"]}
    return answers


def landlord_token(w: Walk) -> Responses:
    """A landlord is a person: their phone and password are no client credentials."""
    answer = w.api.client.post(TOKEN_URL, data={"grant_type": "client_credentials", "client_id": w.landlord.phone,
                                                "client_secret": PASSWORD})
    assert answer.status_code == 401
    return [answer]


HELD = PARTNER + "/disclosure-requests"


def approved_lookup(w: Walk) -> str:
    """A police look-up of an inside person held while the police profile requires approval, then approved by an
    admin: its request id (the profile requires no approval again afterwards)."""
    profile = ok(w.api.as_("admin", "GET", f"{V1}/sharing/profiles/police"))
    body = {k: profile[k] for k in ("version", "field_groups", "legal_basis", "purpose", "retention_days")}
    version = ok(w.api.as_("admin", "PUT", f"{V1}/sharing/profiles/police",
                           json={**body, "approval_required": True}))["version"]
    held = ok(w.api.client.post(PARTNER + "/police/lookup", json={"id_number": w.inside["police_c1"]["id_number"]},
                                headers=w.police()), 202)
    ok(w.api.as_("admin", "POST", f"{V1}/sharing/disclosure-requests/{held['request_id']}/approve",
                 json={"version": 1}))
    ok(w.api.as_("admin", "PUT", f"{V1}/sharing/profiles/police",
                 json={**body, "version": version, "approval_required": False}))
    return str(held["request_id"])


def held_state(w: Walk) -> Responses:
    w.inside["held"] = {"id": approved_lookup(w)}
    return [w.api.client.get(f"{HELD}/{w.inside['held']['id']}", headers=w.police())]


def held_collect(w: Walk) -> Responses:
    """The profile changed after the approval (approval switched off), so the request is void: 409, nothing
    disclosed; a request approved under the profile in force is collected (tests/sharing/test_disclosure_approvals)."""
    answers = [w.api.client.post(f"{HELD}/{w.inside['held']['id']}/collect", headers=w.police())]
    assert answers[0].status_code == 409, answers[0].text
    return answers


def others_request(w: Walk, headers: dict[str, str]) -> Responses:
    """Another partner's request is 404, its state and its collection alike."""
    request_id = approved_lookup(w)
    answers = [w.api.client.get(f"{HELD}/{request_id}", headers=headers),
               w.api.client.post(f"{HELD}/{request_id}/collect", headers=headers)]
    assert [a.status_code for a in answers] == [404, 404], [a.text for a in answers]
    return answers


def outflow_held(w: Walk) -> Responses:
    return others_request(w, w.outflow())


def landlord_held(w: Walk) -> Responses:
    return others_request(w, w.api.headers(w.landlord.phone))


# Every partner route, and the case that walks it for each kind that may call it.
CASES: dict[tuple[str, str], dict[str, Case]] = {
    ("POST", "/oauth/token"): {"police": police_token, "outflow_city": outflow_token, "landlord": landlord_token},
    ("POST", "/police/lookup"): {"police": police_lookup},
    ("POST", "/police/feed"): {"police": police_feed},
    ("POST", "/police/registrations"): {"police": police_upload},
    ("POST", "/outflow/residents"): {"outflow_city": outflow_roster},
    ("POST", "/outflow/feed"): {"outflow_city": outflow_feed},
    ("GET", "/outflow/assistance-requests"): {"outflow_city": assistance_list},
    ("POST", "/outflow/assistance-requests"): {"outflow_city": assistance_send},
    ("GET", "/outflow/assistance-requests/{request_id}"): {"outflow_city": assistance_get},
    ("POST", "/outflow/assistance-requests/{request_id}/progress"): {"outflow_city": assistance_progress},
    ("POST", "/outflow/assistance-requests/{request_id}/answer"): {"outflow_city": assistance_answer},
    ("POST", "/landlord/register"): {"landlord": landlord_register},
    ("GET", "/landlord/me"): {"landlord": landlord_me},
    ("POST", "/landlord/dwelling-registrations"): {"landlord": landlord_claim},
    ("GET", "/landlord/dwelling-registrations"): {"landlord": landlord_claims},
    ("GET", "/landlord/dwellings"): {"landlord": landlord_dwellings},
    ("GET", "/landlord/tenants"): {"landlord": landlord_tenants},
    ("POST", "/landlord/move-ins"): {"landlord": landlord_move_in},
    ("POST", "/landlord/move-outs"): {"landlord": landlord_move_out},
    ("GET", "/landlord/reports"): {"landlord": landlord_reports},
    ("GET", "/disclosure-requests/{request_id}"): {"police": held_state, "outflow_city": outflow_held,
                                                   "landlord": landlord_held},
    ("POST", "/disclosure-requests/{request_id}/collect"): {"police": held_collect, "outflow_city": outflow_held,
                                                            "landlord": landlord_held},
}


def partner_routes() -> set[tuple[str, str]]:
    return {(method, path.removeprefix(PARTNER)) for path, route in api_routes(app) if path.startswith(PARTNER + "/")
            for method in route.methods or ()}


def test_every_partner_route_has_a_walk_case() -> None:
    routes = partner_routes()
    assert len(routes) >= 20
    assert routes == set(CASES), f"walk these partner routes: {sorted(routes - set(CASES))}; " \
                                 f"gone: {sorted(set(CASES) - routes)}"


# --- the records walked ----------------------------------------------------------------------------------------

def marked(api: Api, person: dict[str, Any], user: str) -> dict[str, Any]:
    """A health record and a visit for `person`: what would leak if a shape took them."""
    assert put_health(api, person["id"], user=user).status_code == 200
    post_visit(api, phone_visit_body(person["id"]), user)
    return person


@pytest.fixture()
def walk(api: Api, world: World, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Walk:
    monkeypatch.setattr(get_settings(), "assistance_partner_cities", "130100,130200")
    street, far_street = world.community("c1")["parent_id"], world.community("c3")["parent_id"]
    station = make_client(api, "police", "walk-station", division_ids=[street])
    make_client(api, "police", "walk-station-far", division_ids=[far_street])  # another station's street
    city = make_client(api, "outflow_city", "walk-shijiazhuang", hukou_prefix=PREFIX)
    make_client(api, "outflow_city", "walk-tangshan", hukou_prefix=OTHER_PREFIX)  # another city
    paths = [rows(engine, "SELECT path FROM divisions WHERE id = :i", i=street)[0]["path"]]
    landlord = confirmed_landlord(api, world)
    other = confirmed_landlord(api, world, phone="13912349999", id_number=valid_id("41010519700101061"),
                               name="房东丙", address="文化路90号")
    w = Walk(api, world, engine, station, paths, city, landlord, other)
    people = {"c1": ("worker1", "101"), "c2": ("worker2", "105"), "c3": ("worker3", "103")}
    for community, (user, seq) in people.items():
        made = register_resident(api, user, dwelling_id(world, community, 1), id_number=id_number(seq=seq),
                                 name=("外区" if community == "c3" else "住户") + seq)
        (w.outside if community == "c3" else w.inside)["police_" + community] = marked(api, made, user)
    marked(api, w.city_person("c1"), "worker1")
    w.inside["city_c3"] = marked(api, w.city_person("c3"), "worker3")
    far = register_resident(api, "worker1", dwelling_id(world, "c1", 3), hukou_code="130202", name="唐山人",
                            id_number=id_number(birth="19930707", seq="202", area="130202"), phone=None)
    w.outside["other_city"] = marked(api, far, "worker1")
    for person in (w.inside["city_c3"], far):
        user = "worker3" if person is w.inside["city_c3"] else "worker1"
        ok(api.as_(user, "POST", f"{V1}/residents/{person['id']}/fp-documents", json=valid_doc()), 201)
    ok(api.as_("admin", "POST", V1 + "/cycle/open", json={}))
    w.inside["request"] = w.sent_request(w.inside["city_c3"], user="worker3")
    w.outside["request"] = w.sent_request(far)  # to 唐山
    w.outside["incoming"] = incoming(api, far["id_number"], "TS-1", city_today(), partner="130200")
    incoming(api, w.inside["city_c3"]["id_number"], "SJZ-0", city_today(), partner="130100")  # the city's own
    free = free_dwellings(engine, world)
    tenants = [register_resident(api, "worker1", free[i]["id"], name=name, phone=None,
                                 id_number=valid_id(f"41160219950505{seq}"))
               for i, (name, seq) in enumerate((("租客乙", "002"), ("租客丙", "010"), ("租客丁", "029")))]
    w.inside["tenant1"], w.inside["tenant2"] = marked(api, tenants[0], "worker1"), tenants[1]
    for who, tenant in ((landlord, tenants[0]), (other, tenants[2])):
        ok(api.as_(who.phone, "POST", LANDLORD + "/move-ins", json=move_in_body(
            who.dwelling_id, name=tenant["name"], id_number=tenant["id_number"], phone=None)), 201)
    [theirs] = ok(api.as_(other.phone, "GET", LANDLORD + "/tenants"))["items"]
    w.outside["tenancy"] = {"id": theirs["tenancy_id"]}
    w.extra_outside = {other.dwelling_id, other.claim_id, "文化路90号", theirs["tenancy_id"], "租客丁",
                       theirs["id_number_masked"], w.outside["request"]["id"], w.outside["incoming"]["id"]}
    return w


# --- the walks -------------------------------------------------------------------------------------------------

def walk_kind(w: Walk, kind: str, outside: set[str]) -> set[str]:
    """Every case of `kind`, every answer checked; the keys seen."""
    groups = ok(w.api.as_("admin", "GET", f"{V1}/sharing/profiles/{kind}"))["field_groups"]
    allowed, seen = allowed_keys(kind, groups), set()
    for route, cases in CASES.items():
        if kind not in cases:
            continue
        answers = cases[kind](w)
        assert answers, route
        for answer in answers:
            seen |= check(answer, allowed, outside, w.own)
    return seen


def narrow(api: Api, kind: str, groups: list[str]) -> None:
    profile = ok(api.as_("admin", "GET", f"{V1}/sharing/profiles/{kind}"))
    body = {k: profile[k] for k in ("version", "legal_basis", "purpose", "approval_required", "retention_days")}
    ok(api.as_("admin", "PUT", f"{V1}/sharing/profiles/{kind}", json={**body, "field_groups": groups}))


RESIDENCE = {"dwelling_address", "residence_district_code", "residence_community", "arrival_date", "status",
             "left_on", "residence_permit_no"}


def test_police_stations_see_their_profile_and_jurisdiction_only(walk: Walk) -> None:
    outside = outside_police(walk.engine, walk.station_paths) | {walk.outside["police_c3"]["name"]}
    assert walk.outside["police_c3"]["id_number"] in outside and walk.inside["police_c2"]["id"] not in outside
    seen = walk_kind(walk, "police", outside)
    assert {"id_number", "dwelling_address", "arrival_date", "residence_permit_no"} <= seen
    narrow(walk.api, "police", ["identity"])
    walk.run += 1
    seen = walk_kind(walk, "police", outside)
    assert "id_number" in seen and not seen & RESIDENCE


def test_outflow_cities_see_their_profile_and_their_people_only(walk: Walk) -> None:
    far = walk.outside["other_city"]
    outside = outside_outflow(walk.engine, PREFIX) | walk.extra_outside | {far["name"]}
    assert far["id_number"] in outside and walk.inside["city_c3"]["id"] not in outside
    seen = walk_kind(walk, "outflow_city", outside)
    groups = {"verification_status", "verification_month", "fp_document_status"}
    assert groups | {"residence_community", "hukou_code", "subject_id_number"} <= seen
    narrow(walk.api, "outflow_city", ["identity", "residence"])
    walk.run += 1
    seen = walk_kind(walk, "outflow_city", outside)
    assert "residence_community" in seen and not seen & groups
    narrow(walk.api, "outflow_city", ["identity"])
    walk.run += 1
    seen = walk_kind(walk, "outflow_city", outside)
    assert "hukou_code" in seen and not seen & (groups | RESIDENCE)


def test_landlords_see_their_own_tenants_only(walk: Walk) -> None:
    outside = every_resident(walk.engine) | walk.extra_outside
    seen = walk_kind(walk, "landlord", outside)
    assert {"id_number_masked", "phone_masked", "moved_in_on", "tenancy_id", "late"} <= seen


def test_partners_are_refused_on_each_others_routes(walk: Walk) -> None:
    headers = {"police": walk.police(), "outflow_city": walk.outflow(), "landlord": walk.api.headers(
        walk.landlord.phone)}
    outside = every_resident(walk.engine) | walk.extra_outside
    public = {("POST", "/oauth/token"), ("POST", "/landlord/register")}
    for (method, path), cases in CASES.items():
        if (method, path) in public:
            continue
        url = PARTNER + path.replace("{request_id}", walk.inside["request"]["id"])
        for kind in set(headers) - set(cases):
            answer = walk.api.client.request(method, url, headers=headers[kind], json={})
            assert answer.status_code == 403, (kind, method, path, answer.text)
            check(answer, set(), outside, set())


def test_partners_are_refused_on_staff_record_routes(walk: Walk) -> None:
    """A partner's token never opens a staff route of the register: 403 for every partner kind, with the tokens
    partners really hold (a machine client never signs in with a password)."""
    person = walk.inside["police_c1"]
    record = f"{V1}/residents/{person['id']}"
    routes = [record, f"{record}/health?purpose=visit", f"{record}/fp-documents", f"{record}/tenancies",
              f"{record}/dossier", f"{V1}/residents?id_number={person['id_number']}", f"{V1}/landlords",
              f"{V1}/dwellings/{person['dwelling_id']}/tenants", f"{V1}/me/tasks", f"{V1}/visits"]
    headers = {"police": walk.police(), "outflow_city": walk.outflow(),
               "landlord": walk.api.headers(walk.landlord.phone)}
    for kind, header in headers.items():
        for url in routes:
            answer = walk.api.client.get(url, headers=header)
            assert answer.status_code == 403, (kind, url, answer.text)
            check(answer, set(), every_resident(walk.engine), set())
