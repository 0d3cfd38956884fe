"""A loopback HTTP server that serves a Binance archive tree in the real layout.

`ArchiveServer(root)` serves `root/<path>` at `http://127.0.0.1:<port>/<path>` exactly like
data.binance.vision serves its files: 200 with the bytes, 206 for a `Range` request (aiohttp's
FileResponse), 404 for a file the tree lacks. Faults for tests: `fail_once` (paths answered
500 the first time), `corrupt_once` (paths whose first answer has a flipped byte, so the
client's checksum fails once), and `requests` counts what was asked. It runs on its own event
loop in a thread, so a test can call the synchronous CLI against it. Trees are built by
`engine_sim.archive_tree`.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from pathlib import Path
from types import TracebackType

from aiohttp import web


class ArchiveServer:
    """Serves `root` on 127.0.0.1 in a background thread (use as a context manager)."""

    def __init__(self, root: Path, *, fail_once: set[str] | None = None,
                 corrupt_once: set[str] | None = None) -> None:
        self.root = Path(root).resolve()
        self.fail_once = set(fail_once or ())
        self.corrupt_once = set(corrupt_once or ())
        self.requests: collections.Counter[str] = collections.Counter()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        rel = request.match_info["path"]
        self.requests[rel] += 1
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return web.Response(status=404, text="<Error><Code>NoSuchKey</Code></Error>")
        if rel in self.fail_once:
            self.fail_once.discard(rel)
            return web.Response(status=500, text="internal error")
        if rel in self.corrupt_once:
            self.corrupt_once.discard(rel)
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            return web.Response(body=bytes(data), content_type="application/zip")
        return web.FileResponse(path)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/{path:.+}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]

    def __enter__(self) -> ArchiveServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
