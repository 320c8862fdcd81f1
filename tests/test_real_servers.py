"""Real servers and clients on every loop that does I/O, on 127.0.0.1 only: uvicorn (as a
process started with ``--loop pyloop:new_event_loop``, uvicorn's custom-loop form, and in
process through ``uvicorn.Server(config).serve()`` with each of its HTTP parsers), aiohttp's
server and client, WebSocket echo with aiohttp and with the websockets library.

Every request and every wait is bounded. Versions are pinned in tests/requirements.txt.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time

import aiohttp
import pytest
import uvicorn
import websockets
from aiohttp import web

from tests.io_support import free_port, io_loop_spec, no_fd_leak  # noqa: F401 (fixtures)
from tests.support import BOUND, run_bounded

loop_spec = io_loop_spec  # this module's tests run on the loops that do I/O only

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


# --- the ASGI app (also what `uvicorn tests.asgi_app:app` serves) ---------------------------


async def asgi_app(scope, receive, send):
    """Answers GET with a JSON description of the request, echoes POST bodies."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["method"] == "POST":
        payload, ctype = body, b"application/octet-stream"
    else:
        loop = asyncio.get_running_loop()
        info = {"path": scope["path"], "loop": type(loop).__module__ + "." + type(loop).__name__}
        payload, ctype = json.dumps(info).encode(), b"application/json"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", ctype), (b"content-length", b"%d" % len(payload))],
        }
    )
    await send({"type": "http.response.body", "body": payload})


# --- uvicorn as a process: --loop pyloop:new_event_loop -----------------------------------


def _uvicorn_loop_args(spec) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    if spec.is_pyloop:
        env["PYLOOP_PHASE"] = spec.phase
        return ["--loop", "pyloop:new_event_loop"], env
    return ["--loop", "asyncio"], env


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = BOUND) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"uvicorn exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/ready")
            conn.getresponse().read()
            conn.close()
            return
        time.sleep(0.05)
    raise AssertionError(f"uvicorn did not answer on port {port} within {timeout}s")


@pytest.mark.parametrize("http_impl", ["httptools", "h11"])
def test_uvicorn_process_with_the_custom_loop_factory(loop_spec, http_impl):
    port = free_port()
    loop_args, env = _uvicorn_loop_args(loop_spec)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [
        sys.executable, "-m", "uvicorn", "tests.test_real_servers:asgi_app",
        "--host", "127.0.0.1", "--port", str(port), "--http", http_impl,
        "--no-access-log", "--lifespan", "on", *loop_args,
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        _wait_for_port(port, proc)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=BOUND)
        for i in range(50):  # one keep-alive connection, many requests
            conn.request("GET", f"/item/{i}")
            response = conn.getresponse()
            assert response.status == 200
            info = json.loads(response.read())
            assert info["path"] == f"/item/{i}"
        body = os.urandom(200_000)
        conn.request("POST", "/echo", body=body)
        response = conn.getresponse()
        assert response.status == 200 and response.read() == body
        conn.close()
        expected = "pyloop.EventLoop_" if loop_spec.is_pyloop else "asyncio.unix_events."
        assert info["loop"].startswith(expected), info
        if loop_spec.is_pyloop:
            assert info["loop"].endswith(loop_spec.phase.replace(".", "_")), info
    finally:
        proc.terminate()  # SIGTERM: uvicorn shuts down gracefully
        try:
            out, _ = proc.communicate(timeout=BOUND)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    text = out.decode(errors="replace")
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught (uvicorn >= 0.29)
    assert proc.returncode in (0, -signal.SIGTERM), text
    assert "Application startup complete" in text and "Finished server process" in text, text
    assert "Traceback" not in text and "ERROR" not in text, text


# --- uvicorn in process ---------------------------------------------------------------------


async def _http_get(port: int, path: str, *, keep_alive: bool = True) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    connection = "keep-alive" if keep_alive else "close"
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: {connection}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split()[1])
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    body = await reader.readexactly(length)
    writer.close()
    await writer.wait_closed()
    return status, body


@pytest.mark.usefixtures("no_fd_leak")
@pytest.mark.parametrize("http_impl", ["httptools", "h11"])
def test_uvicorn_server_serve_in_process(loop, http_impl):
    async def main():
        port = free_port()
        config = uvicorn.Config(
            asgi_app,
            host="127.0.0.1",
            port=port,
            http=http_impl,
            lifespan="on",
            log_level="warning",
            access_log=False,
        )
        server = uvicorn.Server(config)
        serving = asyncio.ensure_future(server.serve())
        while not server.started:
            assert not serving.done(), serving
            await asyncio.sleep(0.01)
        results = await asyncio.gather(*(_http_get(port, f"/c/{i}") for i in range(20)))
        for i, (status, body) in enumerate(results):
            assert status == 200
            assert json.loads(body)["path"] == f"/c/{i}"
        server.should_exit = True
        await serving

    run_bounded(loop, main(), timeout=3 * BOUND)


# --- aiohttp ----------------------------------------------------------------------------------


async def _aiohttp_app_runner() -> tuple[web.AppRunner, int]:
    async def hello(request):
        return web.json_response({"hello": request.match_info["name"]})

    async def echo(request):
        return web.Response(body=await request.read())

    async def ws_echo(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await ws.send_str("echo:" + msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    app = web.Application()
    app.add_routes(
        [web.get("/hello/{name}", hello), web.post("/echo", echo), web.get("/ws", ws_echo)]
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port


@pytest.mark.usefixtures("no_fd_leak")
def test_aiohttp_server_and_client(loop):
    async def main():
        runner, port = await _aiohttp_app_runner()
        try:
            async with aiohttp.ClientSession() as session:

                async def get(i):
                    async with session.get(f"http://127.0.0.1:{port}/hello/n{i}") as resp:
                        assert resp.status == 200
                        return await resp.json()

                answers = await asyncio.gather(*(get(i) for i in range(30)))
                assert answers == [{"hello": f"n{i}"} for i in range(30)]
                body = os.urandom(1 << 20)
                async with session.post(f"http://127.0.0.1:{port}/echo", data=body) as resp:
                    assert await resp.read() == body
        finally:
            await runner.cleanup()

    run_bounded(loop, main())


@pytest.mark.usefixtures("no_fd_leak")
def test_aiohttp_websocket_echo(loop):
    async def main():
        runner, port = await _aiohttp_app_runner()
        try:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
                    for i in range(100):
                        await ws.send_str(f"m{i}")
                        assert await ws.receive_str() == f"echo:m{i}"
                    blob = os.urandom(300_000)
                    await ws.send_bytes(blob)
                    assert await ws.receive_bytes() == blob
                    await ws.close()
        finally:
            await runner.cleanup()

    run_bounded(loop, main())


@pytest.mark.usefixtures("no_fd_leak")
def test_aiohttp_serves_a_static_file(loop, tmp_path):
    """web.FileResponse sends with ``loop.sendfile(transport, ...)`` (falling back to reads and
    writes only on NotImplementedError): the loop's sendfile must work on its transports."""
    data = os.urandom(300_000)
    path = tmp_path / "static.bin"
    path.write_bytes(data)

    async def static(request):
        return web.FileResponse(path)

    async def main():
        app = web.Application()
        app.router.add_get("/file", static)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/file") as resp:
                    assert resp.status == 200
                    assert await resp.read() == data
        finally:
            await runner.cleanup()

    run_bounded(loop, main())


# --- websockets -------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_fd_leak")
def test_websockets_library_echo(loop):
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async def main():
        async with serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}") as ws:
                for i in range(100):
                    await ws.send(f"hello {i}")
                    assert await ws.recv() == f"hello {i}"
                blob = os.urandom(500_000)
                await ws.send(blob)
                assert await ws.recv() == blob

            # several clients at once
            async def client(n):
                async with connect(f"ws://127.0.0.1:{port}") as ws:
                    await ws.send(str(n))
                    return await ws.recv()

            assert await asyncio.gather(*(client(n) for n in range(10))) == [
                str(n) for n in range(10)
            ]
        assert websockets.__version__

    run_bounded(loop, main())
