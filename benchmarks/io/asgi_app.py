"""The ASGI app of the HTTP benchmark: ``GET`` anything, get 13 bytes of plain text.

The smallest app that still goes through uvicorn's whole request path (parser, ASGI cycle,
response writing), so that what differs between loops is the loop and its transport."""

BODY = b"Hello, world!"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(BODY))]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
