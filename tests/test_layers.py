"""The packages keep their layers: a domain imports only lower layers, core imports no domain, and no two
packages import each other, directly or round a loop.

The layers are written once, in docs/architecture.md ("Layers", the `layers` block); this test reads them
from there, and every import of every module under app/ (also those inside functions).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"


def layers() -> dict[str, int]:
    """Package → rank, from the `layers` block of docs/architecture.md (lowest first, one line a layer)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = re.search(r"```layers\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md has no ```layers block"
    ranks: dict[str, int] = {}
    for rank, line in enumerate(line for line in block.group(1).splitlines() if line.strip()):
        for name in line.split("#")[0].split():
            ranks[name] = rank
    return ranks


def package_of(path: Path) -> str:
    return path.relative_to(APP).parts[0].removesuffix(".py")


def imports() -> dict[str, set[tuple[str, str]]]:
    """Package → {(imported package, importing file)} for every `app.*` import in the package."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in APP.rglob("*.py"):
        source = package_of(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] if node.module != "app" else [f"app.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "app" and len(parts) > 1 and parts[1] != source:
                    found[source].add((parts[1], str(path.relative_to(ROOT))))
    return found


def upward(found: dict[str, set[tuple[str, str]]], ranks: dict[str, int]) -> list[str]:
    return sorted(f"{where}: {source} (layer {ranks[source]}) imports {target} (layer {ranks[target]})"
                  for source, edges in found.items() for target, where in edges if ranks[target] > ranks[source])


def cycles(found: dict[str, set[tuple[str, str]]]) -> list[list[str]]:
    graph = {source: {target for target, _ in edges} for source, edges in found.items()}
    loops: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                loops.append([*path[path.index(nxt):], nxt])
            else:
                visit(nxt, [*path, nxt])

    for start in sorted(graph):
        visit(start, [start])
    return loops


def test_every_package_has_a_layer() -> None:
    ranks = layers()
    packages = {package_of(p) for p in APP.rglob("*.py")} - {"__init__"}
    assert sorted(packages - set(ranks)) == [], "give these packages a layer in docs/architecture.md"
    assert sorted(set(ranks) - packages) == [], "docs/architecture.md names packages that do not exist"


def test_no_import_from_a_higher_layer() -> None:
    assert upward(imports(), layers()) == []


def test_core_imports_no_domain() -> None:
    assert sorted(imports().get("core", set())) == []


def test_no_cycle_between_packages() -> None:
    assert cycles(imports()) == []


def test_the_checks_can_fail() -> None:
    """A lower layer importing a higher one, and two packages importing each other, are both reported."""
    ranks = {"core": 0, "people": 1, "visits": 2}
    found = {"people": {("visits", "app/people/x.py"), ("core", "app/people/x.py")},
             "visits": {("people", "app/visits/y.py")}}
    assert upward(found, ranks) == ["app/people/x.py: people (layer 1) imports visits (layer 2)"]
    assert ["people", "visits", "people"] in cycles(found)
