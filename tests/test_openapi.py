"""Published contracts kept true by tests.

openapi/openapi.json (clients and the phone app are generated from it) must be exactly what the code
serves: regenerate it with `make openapi` after changing a route or a schema. The README's configuration
table must name every setting with its environment variable.
"""

from __future__ import annotations

import json
from typing import Any

from app.core.config import ROOT, Settings

SPEC = ROOT / "openapi" / "openapi.json"
HOW = "openapi/openapi.json is out of date: run `make openapi` (`migrant openapi --out openapi/openapi.json`)"


def generated() -> dict[str, Any]:
    from app.main import app

    # Through JSON, as the CLI writes it, so tuples and non-string keys compare the way they are stored.
    return dict(json.loads(json.dumps(app.openapi(), ensure_ascii=False, sort_keys=True)))


def operations(spec: dict[str, Any]) -> set[str]:
    return {f"{method.upper()} {path}" for path, item in spec.get("paths", {}).items() for method in item}


def schemas(spec: dict[str, Any]) -> dict[str, Any]:
    return dict(spec.get("components", {}).get("schemas", {}))


def test_committed_openapi_matches_the_code() -> None:
    assert SPEC.exists(), HOW
    committed = json.loads(SPEC.read_text("utf-8"))
    current = generated()
    if committed == current:
        return
    added, removed = operations(current) - operations(committed), operations(committed) - operations(current)
    new, old = schemas(current), schemas(committed)
    changed_schemas = sorted(name for name in set(new) | set(old) if new.get(name) != old.get(name))
    changed_ops = sorted(
        f"{m.upper()} {p}"
        for p, item in current.get("paths", {}).items()
        for m, op in item.items()
        if committed.get("paths", {}).get(p, {}).get(m) not in (None, op)
    )
    raise AssertionError(
        f"{HOW}\n  operations added: {sorted(added)}\n  operations removed: {sorted(removed)}\n"
        f"  operations changed: {changed_ops}\n  schemas changed: {changed_schemas}"
    )


def test_committed_openapi_is_in_canonical_form() -> None:
    # The CLI's exact output (sorted keys, 2-space indent, UTF-8, final newline), so diffs stay small.
    text = SPEC.read_text("utf-8")
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=True) + "\n", HOW


def test_every_operation_is_documented() -> None:
    spec = generated()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert op.get("summary"), f"{method.upper()} {path} has no summary"
            assert op.get("tags"), f"{method.upper()} {path} has no tag"


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    rows = {line.split("|")[1].strip().strip("`") for line in readme.splitlines() if line.startswith("| `")}
    missing = sorted(name.upper() for name in Settings.model_fields if name.upper() not in rows)
    assert not missing, f"README.md's configuration table lacks {missing}"
