"""Python `websockets` (a third-party client) against a WebSocket echo server.

Checks text and binary echoes at the length boundaries, a fragmented message, a ping,
and a close with code 4000. With `deflate`, offers permessage-deflate (websockets' default)
and checks that the server accepted it, with JSON-like messages that do compress.
Over wss:// it verifies the server's certificate against the CA file in WSENGINE_CA
(a self-signed server's own certificate), else against the system's roots.
Usage: python_client.py ws[s]://127.0.0.1:PORT/ [deflate]
"""

import asyncio
import os
import ssl
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

SIZES = [0, 125, 126, 65535, 65536, 1 << 20]


def text_of(n: int) -> str:
    # Multi-byte characters, padded with ASCII to exactly n bytes of UTF-8.
    s = "한" * (n // 3)
    return s + "x" * (n - len(s.encode()))


def json_of(n: int) -> str:
    # Compressible text: repeated JSON records, cut to exactly n bytes.
    record = '{"symbol":"ABC","bid":101.25,"ask":101.5,"size":300},'
    return (record * (n // len(record) + 1))[:n]


async def main(url: str, deflate: bool) -> int:
    checks = 0
    tls = None
    if url.startswith("wss://"):
        tls = ssl.create_default_context(cafile=os.environ.get("WSENGINE_CA"))
    async with connect(url, max_size=None, compression="deflate" if deflate else None, ssl=tls) as ws:
        answer = ws.response.headers.get("Sec-WebSocket-Extensions")
        if deflate:
            assert answer and answer.startswith("permessage-deflate"), f"not negotiated: {answer!r}"
            for n in (1000, 1024, 4096, 65536, 1 << 20):
                text = json_of(n)
                await ws.send(text)
                assert await ws.recv() == text, f"compressible text echo of {n} bytes differs"
                checks += 1
        else:
            assert answer is None, f"extension answered without an offer: {answer!r}"
        for n in SIZES:
            text = text_of(n)
            assert len(text.encode()) == n
            await ws.send(text)
            echo = await ws.recv()
            assert isinstance(echo, str) and echo == text, f"text echo of {n} bytes differs"
            data = bytes((i * 7) % 256 for i in range(n))
            await ws.send(data)
            echo = await ws.recv()
            assert isinstance(echo, bytes) and echo == data, f"binary echo of {n} bytes differs"
            checks += 2
        # A message in fragments: websockets sends an iterable as one fragmented message.
        await ws.send([b"frag", b"mented", b" binary"])
        assert await ws.recv() == b"fragmented binary", "fragmented binary echo differs"
        await ws.send(["frag", "mented ", "텍스트"])
        assert await ws.recv() == "fragmented 텍스트", "fragmented text echo differs"
        checks += 2
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        checks += 1
        await ws.close(code=4000, reason="python done")
        assert ws.close_code == 4000, f"server answered close with {ws.close_code}"
        checks += 1
    try:
        await ws.recv()
    except ConnectionClosed:
        pass
    return checks


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:9001/"
    deflate = len(sys.argv) > 2 and sys.argv[2] == "deflate"
    name = "python websockets client" + (" (permessage-deflate)" if deflate else "")
    if url.startswith("wss://"):
        name += " over wss"
    try:
        n = asyncio.run(asyncio.wait_for(main(url, deflate), 60))
    except Exception as e:  # report, fail
        print(f"{name}: 0 passed, 1 failed: {type(e).__name__}: {e}")
        sys.exit(1)
    print(f"{name}: {n} passed, 0 failed")
