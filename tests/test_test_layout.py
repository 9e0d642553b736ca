"""The tests keep one home for each shared helper (docs/CONVENTIONS.md, "Tests"): no file under tests/ imports a
test module (`test_*.py`), and the helpers every domain needs are defined once — response assertions in
tests/assertions.py, record builders in tests/factories.py, direct reads of the audit log in tests/db.py."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# A helper of this name is defined in this file and nowhere else under tests/.
HOMES = {
    "assert_error": "assertions.py",
    "ok": "assertions.py",
    "valid_id": "factories.py",
    "id_number": "factories.py",
    "resident_body": "factories.py",
    "register_resident": "factories.py",
    "visit_body": "factories.py",
    "post_visit": "factories.py",
    "phone_visit_body": "factories.py",
    "dwelling_id": "factories.py",
    "audit_events": "db.py",
    "all_audit_text": "db.py",
}


def module_name(path: Path, root: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_test_module(name: str) -> bool:
    return name.rsplit(".", 1)[-1].startswith("test_")


def imported(tree: ast.AST, here: str, package: bool) -> set[str]:
    """Every module the file imports by name: `import m`, `from m import x`, and `m.x` in `from m import x`
    when `m` is a package (where `x` may be a module)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = here.split(".")
                anchor = parts[: len(parts) - node.level + (1 if package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            if not is_test_module(base):
                found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def problems(root: Path = TESTS) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        name = module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for target in sorted(imported(tree, name, path.name == "__init__.py")):
            if target.startswith(root.name + ".") and is_test_module(target) and target != name:
                found.append(f"{rel} imports the test module {target}")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in HOMES:
                is_method = any(isinstance(p, ast.ClassDef) and node in p.body for p in ast.walk(tree))
                if rel != HOMES[node.name] and not is_method:
                    found.append(f"{rel}:{node.lineno} defines {node.name}() (its home is tests/{HOMES[node.name]})")
    return found


def test_no_test_imports_a_test_module_and_helpers_live_once() -> None:
    found = problems()
    assert not found, "move shared helpers to a helper module (docs/CONVENTIONS.md, Tests):\n" + "\n".join(found)


def test_the_check_sees_a_test_import_and_a_copied_helper(tmp_path: Path) -> None:
    root = tmp_path / "tests"
    (root / "people").mkdir(parents=True)
    (root / "__init__.py").write_text("", encoding="utf-8")
    (root / "people" / "__init__.py").write_text("", encoding="utf-8")
    (root / "people" / "test_a.py").write_text("def test_a() -> None:\n    pass\n", encoding="utf-8")
    (root / "people" / "test_b.py").write_text(
        "from tests.people.test_a import test_a\nfrom . import test_a as again\n\n"
        "def valid_id(first17: str) -> str:\n    return first17\n", encoding="utf-8")
    (root / "people" / "helpers.py").write_text("from .test_a import test_a\n", encoding="utf-8")
    (root / "test_c.py").write_text("import tests.people.test_a\n\n\n"
                                    "class Machine:\n    def ok(self) -> None:\n        pass\n", encoding="utf-8")
    (root / "factories.py").write_text("def valid_id(first17: str) -> str:\n    return first17\n", encoding="utf-8")
    assert problems(root) == [
        "people/helpers.py imports the test module tests.people.test_a",
        "people/test_b.py imports the test module tests.people.test_a",
        "people/test_b.py:4 defines valid_id() (its home is tests/factories.py)",
        "test_c.py imports the test module tests.people.test_a",
    ]
