"""The baseline of bench/http_submit.py: a bare Starlette route answering ``{}``."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def bare(request: Request) -> Response:
    await request.body()  # read the body, as the submit route does
    return JSONResponse({})


app = Starlette(routes=[Route("/", bare, methods=["POST"])])
