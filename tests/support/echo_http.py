"""A minimal HTTP function used to test the shared router through functions-framework."""

import functions_framework

from functions.api.router import Router
from functions.core.errors import Conflict, ErrorCode
from functions.models.common import StrictModel

router = Router("echo", "Echo")


class Widget(StrictModel):
    name: str
    size: int


class WidgetOut(StrictModel):
    name: str
    size: int
    by: str


class WidgetRef(StrictModel):
    id: str


@router.post("/widgets", roles={"pm"}, body=Widget, response=WidgetOut, status=201)
def create_widget(ctx, body: Widget):
    return WidgetOut(name=body.name, size=body.size, by=ctx.principal.uid)


@router.get("/widgets/{widget_id}", roles={"pm"}, response=WidgetRef)
def get_widget(ctx, widget_id: str):
    if widget_id == "taken":
        raise Conflict("widget taken", code=ErrorCode.ALREADY_EXISTS, details={"id": widget_id})
    if widget_id == "boom":
        raise RuntimeError("bug")
    if widget_id == "undocumented":  # a field the response model does not declare
        return {"id": widget_id, "secret": "internal"}
    if widget_id == "mistyped":  # a number where the model promises a string
        return {"id": 7}
    return {"id": widget_id}


@functions_framework.http
def echo(request):
    return router.handle(request)
