"""Real faults for tests: a small tmpfs that can be filled or remounted read-only, and a TCP proxy in front of
PostgreSQL that can be cut and restored."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from pathlib import Path

from tests.conftest import free_port


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "2m"):
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    """Write zeros until the disk is full; the file that holds them."""
    filler = disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as out:
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


class Proxy:
    """A TCP proxy in front of PostgreSQL: `cut` drops every connection and refuses new ones; `start` again."""

    def __init__(self, target_port: int, *, cut_at: bytes | None = None) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()
        # the first connection whose client sends these bytes is dropped instead (PostgreSQL here runs without TLS;
        # a test using it checks `dropped`)
        self.cut_at = cut_at
        self.dropped = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.links |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, upstream: bool) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    if upstream and self.cut_at is not None and self.cut_at in data:
                        self.cut_at = None
                        self.dropped += 1
                        writer.transport.abort()
                        up_writer.transport.abort()
                        return
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

    async def cut(self) -> None:
        if self.server is not None:
            self.server.close()
            for link in list(self.links):
                link.transport.abort()
            self.links.clear()
            await self.server.wait_closed()
            self.server = None
