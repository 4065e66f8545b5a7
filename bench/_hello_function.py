"""The peer for `python -m bench http`: a bare functions-framework function."""

import functions_framework


@functions_framework.http
def hello(request):
    return "hello"
