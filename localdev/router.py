"""Serve every function of main.py from one local WSGI app, each under /<function>.

functions-framework serves one target per process; mounting one `create_app` per target
keeps each function's real request handling (including the Pub/Sub push-to-CloudEvent
conversion) while the local system needs one port. In the cloud each is its own service.
"""

from __future__ import annotations

import json

from functions_framework import create_app
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.wrappers import Response

from localdev.targets import MAIN, entry_points


def _not_found(environ, start_response):
    body = json.dumps(
        {
            "error": {
                "code": "ROUTE_NOT_FOUND",
                "message": "no function at this path; functions are mounted at /<function>",
                "details": {"functions": sorted(entry_points())},
            }
        }
    )
    return Response(body, status=404, mimetype="application/json")(environ, start_response)


def _function_root(app):
    """`/experiments` and `/experiments/` are the same route, as on Cloud Functions (whose bare URL
    arrives as `/`): without this, Flask answers the mount root with an HTML 308 redirect."""
    app.url_map.merge_slashes = False  # `//x` reaches the router (a coded 404), not an HTML 308

    def wsgi(environ, start_response):
        if not environ.get("PATH_INFO"):
            environ["PATH_INFO"] = "/"
        return app(environ, start_response)

    return wsgi


def build_app():
    mounts = {f"/{name}": _function_root(create_app(target=name, source=str(MAIN))) for name in entry_points()}
    return DispatcherMiddleware(_not_found, mounts)
