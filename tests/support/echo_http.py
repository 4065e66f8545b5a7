"""A minimal HTTP function used to test the shared router through functions-framework."""

import functions_framework

from functions.api.router import Router
from functions.core.errors import Conflict
from functions.models.common import StrictModel

router = Router("echo", "Echo")


class Widget(StrictModel):
    name: str
    size: int


class WidgetOut(StrictModel):
    name: str
    size: int
    by: str


@router.post("/widgets", roles={"pm"}, body=Widget, response=WidgetOut, status=201)
def create_widget(ctx, body: Widget):
    return WidgetOut(name=body.name, size=body.size, by=ctx.principal.uid)


@router.get("/widgets/{widget_id}", roles={"pm"})
def get_widget(ctx, widget_id: str):
    if widget_id == "taken":
        raise Conflict("widget taken", code="ALREADY_EXISTS", details={"id": widget_id})
    if widget_id == "boom":
        raise RuntimeError("bug")
    return {"id": widget_id}


@functions_framework.http
def echo(request):
    return router.handle(request)
