"""Python `websockets` echo server (a third-party server for our client to talk to).

Usage: python_echo_server.py PORT [CERT KEY] — prints `listening on ws://127.0.0.1:PORT`
(wss:// with a certificate and key in PEM files) when ready. permessage-deflate is on
(websockets' default) for clients that offer it.
"""

import asyncio
import ssl
import sys

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main(port: int, cert: str | None, key: str | None) -> None:
    tls = None
    if cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
    scheme = "wss" if tls else "ws"
    async with serve(echo, "127.0.0.1", port, max_size=None, ssl=tls) as server:
        print(f"listening on {scheme}://127.0.0.1:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    args = sys.argv[1:] + [None, None]
    asyncio.run(main(int(args[0]), args[1], args[2]))
