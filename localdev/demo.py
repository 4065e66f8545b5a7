"""The demo the run command plays against the served functions."""

from __future__ import annotations

import requests

from functions.triggers import HTTP_FUNCTIONS
from localdev.tokens import bearer


def run_demo(base: str) -> None:
    admin = bearer("demo-admin", ["admin"])
    for name in HTTP_FUNCTIONS:
        who = requests.get(f"{base}/{name}/whoami", headers=admin, timeout=10)
        spec = requests.get(f"{base}/{name}/openapi.json", timeout=10)
        print(f"  {name:12s} whoami {who.status_code}  openapi paths {len(spec.json().get('paths', {}))}")
