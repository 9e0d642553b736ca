"""Pictures as a handful of shapes, drawn as SVG (text) or PNG (Pillow): nothing fetched, nothing linked.

A `Scene` holds lines, circles, rectangles and text in pixel coordinates; `svg()` writes it with a class
and data attributes on every shape (what the tests and the supervisor page read), `png()` paints the same
shapes. Text in a PNG is drawn with Pillow's built-in font, which has Latin letters only: shapes carry an
ASCII form of their text for it (codes and figures; names stay in the SVG).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from PIL import Image, ImageDraw, ImageFont

FONT = "system-ui, -apple-system, 'Noto Sans CJK SC', 'Microsoft YaHei', sans-serif"


@dataclass
class Shape:
    cls: str
    data: dict[str, str] = field(default_factory=dict)
    title: str | None = None  # a tooltip

    def attrs(self) -> str:
        out = f' class="{self.cls}"'
        for key, value in sorted(self.data.items()):
            out += f" data-{key}={quoteattr(value)}"
        return out

    def tooltip(self) -> str:
        return f"<title>{escape(self.title)}</title>" if self.title else ""


@dataclass
class Line(Shape):
    x1: float = 0
    y1: float = 0
    x2: float = 0
    y2: float = 0
    color: str = "#555"
    width: float = 1.5
    dash: bool = False


@dataclass
class Circle(Shape):
    x: float = 0
    y: float = 0
    r: float = 5
    fill: str = "#1f77b4"
    stroke: str = "#fff"


@dataclass
class Rect(Shape):
    x: float = 0
    y: float = 0
    w: float = 0
    h: float = 0
    fill: str = "#ccc"


@dataclass
class Text(Shape):
    x: float = 0
    y: float = 0
    text: str = ""
    size: float = 12
    color: str = "#222"
    anchor: str = "start"  # start, middle, end
    ascii: str | None = None  # for the PNG (its font has Latin letters only); default: the text if ASCII


@dataclass
class Scene:
    width: int
    height: int
    title: str
    shapes: list[Shape] = field(default_factory=list)

    def add(self, *shapes: Shape) -> None:
        self.shapes.extend(shapes)

    def extend(self, shapes: Iterable[Shape]) -> None:
        self.shapes.extend(shapes)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def svg(scene: Scene) -> str:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{scene.width}" height="{scene.height}" '
             f'viewBox="0 0 {scene.width} {scene.height}" role="img" font-family="{FONT}">',
             f"<title>{escape(scene.title)}</title>",
             f'<rect class="background" x="0" y="0" width="{scene.width}" height="{scene.height}" fill="#fff"/>']
    for s in scene.shapes:
        if isinstance(s, Line):
            dash = ' stroke-dasharray="4 3"' if s.dash else ""
            parts.append(f'<line{s.attrs()} x1="{_num(s.x1)}" y1="{_num(s.y1)}" x2="{_num(s.x2)}" y2="{_num(s.y2)}" '
                         f'stroke="{s.color}" stroke-width="{_num(s.width)}"{dash}>{s.tooltip()}</line>')
        elif isinstance(s, Circle):
            parts.append(f'<circle{s.attrs()} cx="{_num(s.x)}" cy="{_num(s.y)}" r="{_num(s.r)}" fill="{s.fill}" '
                         f'stroke="{s.stroke}" stroke-width="1.5">{s.tooltip()}</circle>')
        elif isinstance(s, Rect):
            parts.append(f'<rect{s.attrs()} x="{_num(s.x)}" y="{_num(s.y)}" width="{_num(max(s.w, 0))}" '
                         f'height="{_num(max(s.h, 0))}" fill="{s.fill}">{s.tooltip()}</rect>')
        elif isinstance(s, Text):
            parts.append(f'<text{s.attrs()} x="{_num(s.x)}" y="{_num(s.y)}" font-size="{_num(s.size)}" '
                         f'fill="{s.color}" text-anchor="{s.anchor}">{escape(s.text)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _rgb(color: str) -> tuple[int, int, int]:
    value = color.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _ascii(s: Text) -> str:
    if s.ascii is not None:
        return s.ascii
    return s.text if s.text.isascii() else "".join(c if c.isascii() else "?" for c in s.text)


def png(scene: Scene) -> bytes:
    image = Image.new("RGB", (scene.width, scene.height), "white")
    draw = ImageDraw.Draw(image)
    fonts: dict[int, ImageFont.ImageFont | ImageFont.FreeTypeFont] = {}
    for s in scene.shapes:
        if isinstance(s, Line):
            _line(draw, s)
        elif isinstance(s, Circle):
            draw.ellipse((s.x - s.r, s.y - s.r, s.x + s.r, s.y + s.r), fill=_rgb(s.fill), outline=_rgb(s.stroke))
        elif isinstance(s, Rect) and s.w > 0 and s.h > 0:
            draw.rectangle((s.x, s.y, s.x + s.w, s.y + s.h), fill=_rgb(s.fill))
        elif isinstance(s, Text):
            size = round(s.size)
            font = fonts.get(size) or fonts.setdefault(size, ImageFont.load_default(size))
            anchor = {"start": "ls", "middle": "ms", "end": "rs"}[s.anchor]
            draw.text((s.x, s.y), _ascii(s), fill=_rgb(s.color), font=font, anchor=anchor)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=False)
    return out.getvalue()


def _line(draw: ImageDraw.ImageDraw, s: Line) -> None:
    width = max(1, round(s.width))
    if not s.dash:
        draw.line((s.x1, s.y1, s.x2, s.y2), fill=_rgb(s.color), width=width)
        return
    length = math.hypot(s.x2 - s.x1, s.y2 - s.y1)
    steps = max(1, int(length // 7))
    for i in range(steps):
        a, b = i / steps, min(1.0, (i + 4 / 7) / steps)
        draw.line((s.x1 + (s.x2 - s.x1) * a, s.y1 + (s.y2 - s.y1) * a,
                   s.x1 + (s.x2 - s.x1) * b, s.y1 + (s.y2 - s.y1) * b), fill=_rgb(s.color), width=width)
