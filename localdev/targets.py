"""The entry points main.py declares, read from its decorators (no import needed)."""

from __future__ import annotations

import ast
from pathlib import Path

MAIN = Path(__file__).resolve().parent.parent / "main.py"


def entry_points(source: Path = MAIN) -> dict[str, str]:
    """name -> 'http' | 'cloudevent'."""
    found: dict[str, str] = {}
    for node in ast.parse(source.read_text()).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for deco in node.decorator_list:
            if (
                isinstance(deco, ast.Attribute)
                and isinstance(deco.value, ast.Name)
                and deco.value.id == "functions_framework"
                and deco.attr in {"http", "cloud_event"}
            ):
                found[node.name] = "http" if deco.attr == "http" else "cloudevent"
    return found
