"""A bare Starlette endpoint returning a constant: the ceiling the answer benchmark compares against."""

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def constant(request):
    await request.form()  # read the same form body the real endpoint reads
    return JSONResponse({"status": "received"})


app = Starlette(routes=[Route("/s/{token}", constant, methods=["POST"])])
