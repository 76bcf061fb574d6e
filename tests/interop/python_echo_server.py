"""Python `websockets` echo server (a third-party server for our client to talk to).

Usage: python_echo_server.py PORT — prints `listening on ws://127.0.0.1:PORT` when ready.
permessage-deflate is on (websockets' default) for clients that offer it.
"""

import asyncio
import sys

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main(port: int) -> None:
    async with serve(echo, "127.0.0.1", port, max_size=None) as server:
        print(f"listening on ws://127.0.0.1:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
