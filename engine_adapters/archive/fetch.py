"""`archive fetch`: parallel, resumable, checksum-verified downloads of archive zips (aiohttp).

For each planned file: a zip already on disk whose `.CHECKSUM` beside it matches is skipped
(resume). Otherwise the `.CHECKSUM` is fetched first (404: the archive lacks that day or month,
listed as MISSING, never filled), then the zip is streamed into `<name>.zip.part` (a `.part`
left by an interrupted run is continued with an HTTP Range request), hashed with sha256 and
renamed to `<name>.zip` only when it matches. A mismatch is fetched once more from scratch;
a second mismatch is reported as BAD_CHECKSUM and the bytes are deleted, never used. So under
its final name a zip is always a verified one, and `import` can trust the tree.
"""

from __future__ import annotations

import asyncio
import enum
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import aiohttp
import attrs

from engine_adapters.archive.layout import (
    ArchiveError,
    ArchiveFile,
    parse_checksum,
    sha256_file,
)

CHUNK = 1 << 16


class FileStatus(enum.Enum):
    """What became of one planned file."""

    #: Already on disk and matching its checksum: not downloaded again.
    CACHED = "cached"
    #: Downloaded now and verified.
    DOWNLOADED = "downloaded"
    #: The archive has no such file (HTTP 404): a day or month it lacks.
    MISSING = "missing"
    #: The zip did not match its .CHECKSUM twice: deleted, not used.
    BAD_CHECKSUM = "bad_checksum"
    #: Network or server error (not 404) after one retry.
    FAILED = "failed"


@attrs.frozen(kw_only=True, slots=True)
class FileResult:
    file: ArchiveFile
    status: FileStatus
    size: int = 0
    detail: str = ""


@attrs.frozen(kw_only=True, slots=True)
class FetchReport:
    results: tuple[FileResult, ...]

    def having(self, status: FileStatus) -> list[FileResult]:
        return [r for r in self.results if r.status is status]

    @property
    def ok(self) -> bool:
        """True when nothing failed or mismatched (missing days are the archive's, not ours)."""
        return not self.having(FileStatus.BAD_CHECKSUM) and not self.having(FileStatus.FAILED)

    def to_json(self) -> dict[str, object]:
        counts = {s.value: len(self.having(s)) for s in FileStatus}
        return {"counts": counts, "bytes": sum(r.size for r in self.results),
                "missing": [r.file.rel_path for r in self.having(FileStatus.MISSING)],
                "bad_checksum": [r.file.rel_path for r in self.having(FileStatus.BAD_CHECKSUM)],
                "failed": [{"file": r.file.rel_path, "error": r.detail}
                           for r in self.having(FileStatus.FAILED)]}


class _Missing(Exception):
    pass


@attrs.define
class _Fetcher:
    session: aiohttp.ClientSession
    base: str
    root: Path
    on_bytes: Callable[[int], None]

    async def _get_text(self, url: str) -> str:
        async with self.session.get(url) as resp:
            if resp.status == 404:
                raise _Missing(url)
            if resp.status != 200:
                raise ArchiveError(f"GET {url}: HTTP {resp.status}")
            return await resp.text()

    async def _download(self, url: str, part: Path, resume: bool) -> None:
        have = part.stat().st_size if resume and part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        async with self.session.get(url, headers=headers) as resp:
            if resp.status == 404:
                raise _Missing(url)
            if resp.status == 416:  # the .part is not a prefix we can continue: start over
                part.unlink(missing_ok=True)
                return await self._download(url, part, resume=False)
            if resp.status not in (200, 206):
                raise ArchiveError(f"GET {url}: HTTP {resp.status}")
            mode = "ab" if resp.status == 206 and have else "wb"
            with open(part, mode) as f:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    f.write(chunk)
                    self.on_bytes(len(chunk))
        return None

    async def fetch(self, af: ArchiveFile) -> FileResult:
        target = af.local(self.root)
        sums = target.with_name(target.name + ".CHECKSUM")
        if target.exists() and sums.exists():
            try:
                if sha256_file(target) == parse_checksum(sums.read_text(), str(sums)):
                    return FileResult(file=af, status=FileStatus.CACHED,
                                      size=target.stat().st_size)
            except ArchiveError:
                pass
        url = f"{self.base}/{af.rel_path}"
        try:
            return await self._fetch_verified(af, url, target, sums)
        except _Missing:
            return FileResult(file=af, status=FileStatus.MISSING, detail="HTTP 404")

    async def _fetch_verified(self, af: ArchiveFile, url: str, target: Path,
                              sums: Path) -> FileResult:
        last = ""
        for attempt in range(2):  # one retry after a network error
            try:
                body = await self._get_text(url + ".CHECKSUM")
                break
            except (TimeoutError, aiohttp.ClientError, ArchiveError) as exc:
                last = f"{url}.CHECKSUM: {exc!r}"
                if attempt:
                    return FileResult(file=af, status=FileStatus.FAILED, detail=last)
        want = parse_checksum(body, url + ".CHECKSUM")
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        for attempt in range(2):  # one refetch after a mismatch or a network error
            try:
                await self._download(url, part, resume=attempt == 0)
            except (TimeoutError, aiohttp.ClientError, ArchiveError) as exc:
                last = f"{url}: {exc!r}"
                continue
            got = sha256_file(part)
            if got == want:
                os.replace(part, target)
                sums.write_text(body)
                return FileResult(file=af, status=FileStatus.DOWNLOADED,
                                  size=target.stat().st_size)
            last = f"sha256 {got[:16]}... != checksum {want[:16]}..."
            part.unlink(missing_ok=True)
            if attempt:
                return FileResult(file=af, status=FileStatus.BAD_CHECKSUM, detail=last)
        part.unlink(missing_ok=True)
        return FileResult(file=af, status=FileStatus.FAILED, detail=last)


async def fetch_files(files: Sequence[ArchiveFile], root: Path, *, base_url: str,
                      parallel: int = 8, timeout_s: float = 300.0,
                      on_bytes: Callable[[int], None] = lambda n: None,
                      on_done: Callable[[FileResult], None] = lambda r: None) -> FetchReport:
    """Fetch `files` under `root` with at most `parallel` requests in flight."""
    if parallel < 1:
        raise ValueError(f"parallel must be >= 1, got {parallel}")
    sem = asyncio.Semaphore(parallel)
    timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=30)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        fetcher = _Fetcher(session, base_url.rstrip("/"), root, on_bytes)

        async def one(af: ArchiveFile) -> FileResult:
            async with sem:
                r = await fetcher.fetch(af)
            on_done(r)
            return r

        results = await asyncio.gather(*(one(f) for f in files))
    return FetchReport(results=tuple(results))

