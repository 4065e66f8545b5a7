"""The pure core must stay free of cloud clients so it can be read and tested alone."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[3] / "functions" / "core"
FORBIDDEN = ("google", "firebase_admin", "functions_framework", "flask", "functions.adapters", "functions.services")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_imports_no_cloud_module():
    files = sorted(CORE.rglob("*.py"))
    assert files, "the core package has modules"
    offenders = {
        str(f.relative_to(CORE)): sorted(m for m in imported_modules(f) if m.startswith(FORBIDDEN)) for f in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}
