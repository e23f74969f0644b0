#!/usr/bin/env python3
"""tests/bench/proxy.py: a TCP relay on 127.0.0.1 that adds latency.

    proxy.py TARGET_PORT DELAY_MS LIFETIME_S

Listens on a free port of 127.0.0.1 (printed on stdout, one line, once it
accepts), relays every connection to 127.0.0.1:TARGET_PORT and holds each
chunk DELAY_MS milliseconds in each direction, in order, so the round-trip
time grows by 2 * DELAY_MS.  Bandwidth is not limited.  The bytes pass
unchanged (TLS goes through end to end).  The proxy exits by itself after
LIFETIME_S seconds, or when its standard input closes (the harness holds a
pipe to it), whichever comes first.
"""
import asyncio
import sys

CHUNK = 256 * 1024


async def pump(reader, writer, delay):
    loop = asyncio.get_running_loop()
    q = asyncio.Queue()

    async def rd():
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                q.put_nowait((loop.time() + delay, data))
        except OSError:
            pass
        q.put_nowait((loop.time() + delay, None))

    async def wr():
        try:
            while True:
                due, data = await q.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    if writer.can_write_eof():
                        writer.write_eof()
                    break
                writer.write(data)
                await writer.drain()
        except OSError:
            pass

    r = asyncio.ensure_future(rd())
    await wr()
    r.cancel()


async def handle(creader, cwriter, port, delay):
    try:
        sreader, swriter = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        cwriter.close()
        return
    try:
        await asyncio.wait_for(asyncio.gather(
            pump(creader, swriter, delay), pump(sreader, cwriter, delay)),
            timeout=3600)
    except (asyncio.TimeoutError, OSError):
        pass
    for w in (cwriter, swriter):
        try:
            w.close()
        except OSError:
            pass


async def main():
    port, delay, life = int(sys.argv[1]), float(sys.argv[2]) / 1000.0, \
        float(sys.argv[3])
    srv = await asyncio.start_server(
        lambda r, w: handle(r, w, port, delay), "127.0.0.1", 0)
    print(srv.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.create_future()

    def on_stdin():
        if not sys.stdin.buffer.read1(4096) and not stdin_closed.done():
            stdin_closed.set_result(True)

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    try:
        await asyncio.wait_for(stdin_closed, timeout=life)
    except asyncio.TimeoutError:
        pass
    srv.close()


if __name__ == "__main__":
    asyncio.run(main())
