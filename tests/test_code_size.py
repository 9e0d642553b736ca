"""Files and functions stay small enough to read (docs/CONVENTIONS.md, "Layout"): no module under app/ passes
500 lines and no function 60, the demo generator (app/demo) excepted — it is a script of sample data, read
once, not a place where rules live."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 60
EXEMPT = (APP / "demo",)


def modules() -> list[Path]:
    return [path for path in sorted(APP.rglob("*.py")) if not any(path.is_relative_to(e) for e in EXEMPT)]


def too_long(path: Path, root: Path = ROOT) -> list[str]:
    source = path.read_text(encoding="utf-8")
    name = str(path.relative_to(root))
    found = []
    lines = len(source.splitlines())
    if lines > MAX_FILE_LINES:
        found.append(f"{name}: {lines} lines")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{name}:{node.lineno} {node.name}(): {length} lines")
    return found


def test_no_file_or_function_is_too_long() -> None:
    found = [line for path in modules() for line in too_long(path)]
    assert not found, "split these (docs/CONVENTIONS.md, Layout):\n" + "\n".join(found)


def test_the_check_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    sample = tmp_path / "long.py"
    sample.write_text(f"def long():\n{body}\n", encoding="utf-8")
    assert too_long(sample, tmp_path) == [f"long.py:1 long(): {MAX_FUNCTION_LINES + 1} lines"]
