"""A registry some milliseconds away, on loopback: a TCP proxy that holds every chunk for half the round trip in
each direction (no bandwidth limit, order kept). bench_publish.py --rtt-ms puts both sides behind it, so a request
costs what it costs over a network: the round trips a job makes after its build, not its CPU, then decide."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

CHUNK = 1 << 16


@contextmanager
def delayed(upstream: str, rtt_ms: float) -> Iterator[str]:
    """A `host:port` on 127.0.0.1 that reaches `upstream` (`host:port`) with `rtt_ms` added to every round trip."""
    loop = asyncio.new_event_loop()
    up_host, up_port = upstream.rsplit(":", 1)
    delay = rtt_ms / 2000

    async def carry(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pending: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def read() -> None:
            while data := await reader.read(CHUNK):
                await pending.put((loop.time() + delay, data))
            await pending.put((loop.time() + delay, b""))

        async def write() -> None:
            while True:
                due, data = await pending.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        try:
            await asyncio.gather(read(), write())
        except (ConnectionError, OSError):
            pass  # either end went away: so does the other
        finally:
            writer.close()

    async def accepted(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(up_host, int(up_port))
        except OSError:
            client_writer.close()
            return
        with contextlib.suppress(asyncio.CancelledError):  # the proxy closing: a connection's task ends quietly
            await asyncio.gather(carry(client_reader, server_writer), carry(server_reader, client_writer))

    server = loop.run_until_complete(asyncio.start_server(accepted, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def shut() -> None:
        server.close()
        carrying = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in carrying:
            task.cancel()
        await asyncio.gather(*carrying, return_exceptions=True)

    try:
        yield f"127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(shut(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
