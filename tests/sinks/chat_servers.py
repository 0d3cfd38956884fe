"""Loopback servers that answer like Telegram's bot API, a Discord webhook and a Slack webhook.

Each follows a script of answers ("429", "500", "ok", "bad") and records what it accepted and
when each request came, so tests can check payloads, order and the waits between tries.
The 429 answers carry each service's own rate-limit form: Telegram's JSON `parameters.
retry_after`, Discord's JSON `retry_after` (float seconds) with a Retry-After header, Slack's
Retry-After header only.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

TOKEN = "123456:TEST-token"


class ChatServer:
    """One fake service; `url` is what a sink is configured with."""

    def __init__(self, service: str, script: list[str], *, retry_after: float = 0.2,
                 stall_s: float = 0.0) -> None:
        self.service = service
        self.script = list(script)
        self.retry_after = retry_after
        self.stall_s = stall_s
        self.accepted: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.times.append(time.monotonic())
        body = await request.json()
        if self.stall_s:
            await asyncio.sleep(self.stall_s)
        what = self.script.pop(0) if self.script else "ok"
        answer: web.Response = getattr(self, f"_{self.service}")(what, body)
        return answer

    def _telegram(self, what: str, body: dict[str, Any]) -> web.Response:
        if what == "429":
            wait = int(self.retry_after)
            return web.json_response({"ok": False, "error_code": 429,
                                      "description": f"Too Many Requests: retry after {wait}",
                                      "parameters": {"retry_after": wait}}, status=429)
        if what == "500":
            return web.json_response({"ok": False, "error_code": 500,
                                      "description": "Internal Server Error"}, status=500)
        if what == "bad" or not {"chat_id", "text"} <= set(body):
            return web.json_response({"ok": False, "error_code": 400,
                                      "description": "Bad Request: chat not found"}, status=400)
        self.accepted.append(body)
        return web.json_response({"ok": True, "result": {"message_id": len(self.accepted),
                                                         "text": body["text"]}})

    def _discord(self, what: str, body: dict[str, Any]) -> web.Response:
        if what == "429":
            return web.json_response({"message": "You are being rate limited.",
                                      "retry_after": self.retry_after, "global": False},
                                     status=429, headers={"Retry-After": "1"})
        if what == "500":
            return web.Response(status=502, text="Bad Gateway")
        if what == "bad" or not (body.get("content") or body.get("embeds")):
            return web.json_response({"message": "Cannot send an empty message", "code": 50006},
                                     status=400)
        self.accepted.append(body)
        return web.Response(status=204)

    def _slack(self, what: str, body: dict[str, Any]) -> web.Response:
        if what == "429":
            return web.Response(status=429, text="rate_limited",
                                headers={"Retry-After": str(int(self.retry_after))})
        if what == "500":
            return web.Response(status=500, text="internal_error")
        if what == "bad" or "text" not in body:
            return web.Response(status=400, text="invalid_payload")
        self.accepted.append(body)
        return web.Response(status=200, text="ok")


@asynccontextmanager
async def serving(server: ChatServer) -> AsyncIterator[ChatServer]:
    app = web.Application()
    path = {"telegram": f"/bot{TOKEN}/sendMessage", "discord": "/api/webhooks/1/abc",
            "slack": "/services/T1/B1/xyz"}[server.service]
    app.router.add_post(path, server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    server.url = base if server.service == "telegram" else base + path
    try:
        yield server
    finally:
        await runner.cleanup()


def dumps(doc: object) -> str:
    return json.dumps(doc, sort_keys=True)
