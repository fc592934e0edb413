"""A TLS front for a plain server, for the tests: the development Valkey is built without
TLS, so a ``rediss://`` client reaches it through this (a real TLS handshake, checked
against the test's own CA), as a bank's Redis behind TLS would be reached."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Iterator

import trustme

from streams.web import free_port


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


@contextlib.contextmanager
def tls_front(ca: trustme.CA, target_port: int) -> Iterator[int]:
    """Listen with TLS (a certificate for 127.0.0.1 issued by ``ca``) on a free port, and
    forward every connection to 127.0.0.1:``target_port``; yields the port."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stopping = asyncio.Event()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_w.close()
            return
        try:
            await asyncio.gather(_pipe(client_r, server_w), _pipe(server_r, client_w))
        except asyncio.CancelledError:  # the front stops: its connections end with it
            client_w.close()
            server_w.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=context)
        started.set()
        await stopping.wait()
        server.close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:  # the connections' pipes
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(stopping.set)
        thread.join(10)
        loop.close()
