"""GCJ-02 ⇄ WGS-84 against published reference points, round trips, and distances."""

from __future__ import annotations

import math

import pytest

from app.visits.geo import EARTH_RADIUS_M, gcj02_to_wgs84, haversine_m, out_of_china, wgs84_to_gcj02

# (WGS-84, GCJ-02) pairs from eviltransform's test suite (googollee/eviltransform).
EVILTRANSFORM = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),
    ((39.915, 116.404), (39.91640428150164, 116.41024449916938)),
]


@pytest.mark.parametrize(("wgs", "gcj"), EVILTRANSFORM)
def test_forward_matches_eviltransform(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    lat, lng = wgs84_to_gcj02(*wgs)
    assert lat == pytest.approx(gcj[0], abs=1e-9) and lng == pytest.approx(gcj[1], abs=1e-9)


@pytest.mark.parametrize(("wgs", "gcj"), EVILTRANSFORM)
def test_reverse_matches_eviltransform(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    lat, lng = gcj02_to_wgs84(*gcj)
    # 1e-8 degrees is about a millimetre.
    assert lat == pytest.approx(wgs[0], abs=1e-8) and lng == pytest.approx(wgs[1], abs=1e-8)


def test_reverse_matches_gcoord() -> None:
    """gcoord (hujiulong/gcoord) test: GCJ-02 (45, 123) → WGS-84 (44.99804071, 122.99395597), 5 decimals."""
    lat, lng = gcj02_to_wgs84(45.0, 123.0)
    assert lat == pytest.approx(44.99804071, abs=5e-6) and lng == pytest.approx(122.99395597, abs=5e-6)


@pytest.mark.parametrize("point", [(34.7466, 113.6253), (34.80, 113.55), (22.54, 114.06), (45.75, 126.63),
                                   (18.25, 109.51), (39.9, 116.4)])
def test_round_trip_under_a_centimetre(point: tuple[float, float]) -> None:
    back = gcj02_to_wgs84(*wgs84_to_gcj02(*point))
    assert haversine_m(*point, *back) < 0.01
    # and the shift itself is real: hundreds of metres in Zhengzhou and elsewhere
    assert 100 < haversine_m(*point, *wgs84_to_gcj02(*point)) < 1000


@pytest.mark.parametrize("point", [(51.5074, -0.1278), (35.6762, 139.6503), (-33.86, 151.21), (0.0, 0.0),
                                   (40.71, -74.0)])
def test_outside_china_nothing_shifts(point: tuple[float, float]) -> None:
    assert out_of_china(*point)
    assert wgs84_to_gcj02(*point) == point
    assert gcj02_to_wgs84(*point) == point


def test_haversine() -> None:
    assert haversine_m(34.75, 113.62, 34.75, 113.62) == 0
    one_degree = EARTH_RADIUS_M * math.pi / 180
    assert haversine_m(0, 0, 1, 0) == pytest.approx(one_degree)
    assert haversine_m(0, 0, 0, 1) == pytest.approx(one_degree)
    # Beijing ↔ Shanghai is about 1,067 km.
    assert haversine_m(39.9042, 116.4074, 31.2304, 121.4737) == pytest.approx(1_067_000, rel=0.01)
