"""The three pictures, from plain figures to a `Scene` (scene.py): a worker's day, a community's coverage by
grid, a district's trend. No map tiles: positions are drawn from coordinates on a local flat projection
(equirectangular around the day's centre, exact enough within a city), with a scale bar and north up.
Division outlines are not in the data (divisions have no boundaries stored), so none is drawn; the picture
says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import pairwise

from app.audit.pictures.scene import Circle, Line, Rect, Scene, Text
from app.core.types import CITY_TZ

WIDTH, HEIGHT, MARGIN = 900, 640, 50
NO_OUTLINES = "Division outlines: not in the data (no boundaries are stored); positions drawn from coordinates."
FLAG_COLOR, OK_COLOR, HOME_COLOR, TRACK_COLOR = "#d62728", "#1f77b4", "#2ca02c", "#7f7f7f"


@dataclass
class DayVisit:
    id: str
    started_at: datetime
    mode: str
    lat: float | None
    lng: float | None
    dwelling_id: str | None
    home_lat: float | None
    home_lng: float | None
    rules: list[str] = field(default_factory=list)


def _projector(points: list[tuple[float, float]]) -> tuple[Callable[[float, float], tuple[float, float]], float]:
    lats, lngs = [p[0] for p in points], [p[1] for p in points]
    mid = math.radians((min(lats) + max(lats)) / 2)
    metres_lat, metres_lng = 111_320.0, 111_320.0 * math.cos(mid)
    span_x = max((max(lngs) - min(lngs)) * metres_lng, 50.0)
    span_y = max((max(lats) - min(lats)) * metres_lat, 50.0)
    scale = min((WIDTH - 2 * MARGIN) / span_x, (HEIGHT - 2 * MARGIN - 60) / span_y)  # pixels per metre
    left = (WIDTH - span_x * scale) / 2
    top = 70 + (HEIGHT - 130 - span_y * scale) / 2
    west, north = min(lngs), max(lats)

    def project(lat: float, lng: float) -> tuple[float, float]:
        return left + (lng - west) * metres_lng * scale, top + (north - lat) * metres_lat * scale

    return project, scale


def _scale_bar(scene: Scene, scale: float) -> None:
    target = 120 / scale  # metres in about 120 px
    nice = min((n for n in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000) if n >= target / 2),
               default=50000)
    length = nice * scale
    y = HEIGHT - 30
    scene.add(Line("scale-bar", x1=MARGIN, y1=y, x2=MARGIN + length, y2=y, color="#000", width=2),
              Text("scale-label", x=MARGIN + length / 2, y=y - 6, text=f"{nice:,} m", size=11, anchor="middle"),
              Text("north", x=MARGIN, y=y - 24, text="N ↑", size=14, ascii="N ^"))


def worker_day(worker: str, day: date, visits: list[DayVisit]) -> Scene:
    flagged = sum(1 for v in visits if v.rules)
    scene = Scene(WIDTH, HEIGHT, f"{worker} · {day.isoformat()} · {len(visits)} visits, {flagged} flagged")
    scene.add(Text("heading", x=MARGIN, y=30, text=scene.title, size=16),
              Text("legend", x=MARGIN, y=50, size=11, color="#555",
                   text="● check-in (red: flagged, with its reasons)  ■ dwelling  — track in time order  "
                        "┄ check-in to its dwelling", ascii="o check-in (red: flagged)  # dwelling  - track"),
              Text("note", x=MARGIN, y=HEIGHT - 10, text=NO_OUTLINES, size=10, color="#777"))
    located = [v for v in visits if v.lat is not None and v.lng is not None]
    points = [(v.lat, v.lng) for v in located] + [(v.home_lat, v.home_lng) for v in visits
                                                    if v.home_lat is not None and v.home_lng is not None]
    unlocated = len(visits) - len(located)
    if unlocated:
        scene.add(Text("unlocated", x=WIDTH - MARGIN, y=HEIGHT - 30, anchor="end", size=11,
                       text=f"{unlocated} visits without a check-in position (phone, or no fix)"))
    if not points:
        scene.add(Text("empty", x=WIDTH / 2, y=HEIGHT / 2, anchor="middle", size=14, text="No located visits"))
        return scene
    project, scale = _projector(points)  # type: ignore[arg-type]
    _scale_bar(scene, scale)
    homes: dict[str, tuple[float, float]] = {}
    for v in visits:
        if v.dwelling_id and v.home_lat is not None and v.home_lng is not None and v.dwelling_id not in homes:
            homes[v.dwelling_id] = project(v.home_lat, v.home_lng)
            x, y = homes[v.dwelling_id]
            scene.add(Rect("dwelling", data={"id": v.dwelling_id}, x=x - 5, y=y - 5, w=10, h=10, fill=HOME_COLOR))
    spots = [(v, project(v.lat, v.lng)) for v in located if v.lat is not None and v.lng is not None]
    for (a, (x1, y1)), (b, (x2, y2)) in pairwise(spots):
        scene.add(Line("track", data={"from": a.id, "to": b.id}, x1=x1, y1=y1, x2=x2, y2=y2, color=TRACK_COLOR))
    for v, (x, y) in spots:
        if v.dwelling_id in homes:
            hx, hy = homes[v.dwelling_id]
            scene.add(Line("tie", data={"visit": v.id}, x1=x, y1=y, x2=hx, y2=hy, color=HOME_COLOR, width=1,
                           dash=True))
    for n, (v, (x, y)) in enumerate(spots, start=1):
        time = v.started_at.astimezone(CITY_TZ).strftime("%H:%M")
        cls = "checkin flagged" if v.rules else "checkin"
        scene.add(Circle(cls, data={"id": v.id, "n": str(n), "rules": ",".join(v.rules)}, x=x, y=y, r=7,
                         fill=FLAG_COLOR if v.rules else OK_COLOR, title=", ".join(v.rules) or None),
                  Text("label", data={"id": v.id}, x=x + 10, y=y - 8, size=11,
                       text=f"{n} {time}" + (f" ⚠ {', '.join(v.rules)}" if v.rules else ""),
                       ascii=f"{n} {time}" + (f" ! {', '.join(v.rules)}" if v.rules else ""),
                       color=FLAG_COLOR if v.rules else "#222"))
    return scene


@dataclass
class GridCoverage:
    id: str | None
    code: str
    name: str
    registered: int
    visited: int
    overdue: int
    verified: int | None = None  # None: the month's verification was not opened in the community


def coverage(community: str, month: str, grids: list[GridCoverage]) -> Scene:
    row_h, top = 44, 110
    height = max(260, top + row_h * len(grids) + 70)
    scene = Scene(WIDTH, height, f"{community} · {month} · coverage by grid")
    scene.add(Text("heading", x=MARGIN, y=30, text=scene.title, size=16, ascii=f"{month} coverage by grid"),
              Text("legend", x=MARGIN, y=52, size=11, color="#555",
                   text="grey: registered residents · green: visited this month · red: tasks overdue now · "
                        "verified: this month's verifications recorded (n/a: the month was not opened)",
                   ascii="grey: registered, green: visited this month, red: overdue now, verified: recorded"),
              Text("note", x=MARGIN, y=height - 12, size=10, color="#777", text=NO_OUTLINES))
    scale_max = max([g.registered for g in grids] + [g.overdue for g in grids] + [1])
    bar_w = WIDTH - 2 * MARGIN - 330
    for i, g in enumerate(grids):
        y = top + i * row_h
        verified = "n/a" if g.verified is None else str(g.verified)
        data = {"grid": g.id or "", "registered": str(g.registered), "visited": str(g.visited),
                "overdue": str(g.overdue), "verified": verified}
        scene.add(Text("grid-label", data=data, x=MARGIN, y=y + 14, size=12, text=f"{g.name} ({g.code})",
                       ascii=g.code),
                  Rect("bar-registered", data=data, x=MARGIN + 170, y=y, w=bar_w * g.registered / scale_max, h=12,
                       fill="#d9d9d9"),
                  Rect("bar-visited", data=data, x=MARGIN + 170, y=y, w=bar_w * g.visited / scale_max, h=12,
                       fill=HOME_COLOR),
                  Rect("bar-overdue", data=data, x=MARGIN + 170, y=y + 16, w=bar_w * g.overdue / scale_max, h=8,
                       fill=FLAG_COLOR),
                  Text("grid-figures", data=data, x=WIDTH - MARGIN, y=y + 14, size=12, anchor="end",
                       text=f"visited {g.visited}/{g.registered} · overdue {g.overdue} · verified {verified}",
                       ascii=f"visited {g.visited}/{g.registered}, overdue {g.overdue}"))
    if not grids:
        scene.add(Text("empty", x=WIDTH / 2, y=top + 20, anchor="middle", size=14, text="No grids"))
    return scene


@dataclass
class MonthFigures:
    month: str
    in_person: int
    phone: int
    flagged: int  # visits with check-in flags


def trend(division: str, months: list[MonthFigures]) -> Scene:
    scene = Scene(WIDTH, HEIGHT, f"{division} · visits over {len(months)} months")
    scene.add(Text("heading", x=MARGIN, y=30, text=scene.title, size=16, ascii=f"visits over {len(months)} months"),
              Text("legend", x=MARGIN, y=52, size=11, color="#555",
                   text="blue: in person · orange: phone · red points: visits with check-in flags",
                   ascii="blue: in person, orange: phone, red: check-in flagged"))
    top, bottom = 90, HEIGHT - 60
    peak = max([m.in_person + m.phone for m in months] + [1])
    slot = (WIDTH - 2 * MARGIN) / max(len(months), 1)
    height = bottom - top
    scene.add(Line("axis", x1=MARGIN, y1=bottom, x2=WIDTH - MARGIN, y2=bottom, color="#000", width=1))
    previous: tuple[float, float] | None = None
    for i, m in enumerate(months):
        x = MARGIN + i * slot + slot * 0.2
        w = slot * 0.6
        h_in, h_phone = height * m.in_person / peak, height * m.phone / peak
        data = {"month": m.month, "in_person": str(m.in_person), "phone": str(m.phone), "flagged": str(m.flagged)}
        fy = bottom - height * m.flagged / peak
        scene.add(Rect("bar-in-person", data=data, x=x, y=bottom - h_in, w=w, h=h_in, fill=OK_COLOR),
                  Rect("bar-phone", data=data, x=x, y=bottom - h_in - h_phone, w=w, h=h_phone, fill="#ff7f0e"),
                  Text("value-label", data=data, x=x + w / 2, y=bottom - h_in - h_phone - 5, size=11, anchor="middle",
                       text=str(m.in_person + m.phone)),
                  Text("month-label", data=data, x=x + w / 2, y=bottom + 16, size=11, anchor="middle", text=m.month))
        if previous is not None:
            scene.add(Line("flagged-line", x1=previous[0], y1=previous[1], x2=x + w / 2, y2=fy, color=FLAG_COLOR))
        scene.add(Circle("flagged-point", data=data, x=x + w / 2, y=fy, r=4, fill=FLAG_COLOR,
                         title=f"{m.flagged} flagged"))
        previous = (x + w / 2, fy)
    return scene
