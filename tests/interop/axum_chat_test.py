"""Python `websockets` clients against the axum chat port (engine/examples/axum_chat).

Two users join and see each other's joins and messages (`name: text`); a third asking
for a taken name gets "Username already taken." and is closed; when one leaves, the
other sees "NAME left."; the page is served on `/`.
Usage: axum_chat_test.py http://127.0.0.1:PORT
"""

import asyncio
import sys
import urllib.request

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def expect(ws, wanted: str) -> None:
    got = await asyncio.wait_for(ws.recv(), 10)
    assert got == wanted, f"expected {wanted!r}, got {got!r}"


async def main(base: str) -> None:
    page = urllib.request.urlopen(base + "/", timeout=10).read().decode()
    assert "new WebSocket" in page, page[:200]
    url = base.replace("http://", "ws://") + "/websocket"
    async with connect(url) as alice:
        await alice.send("alice")
        await expect(alice, "alice joined.")
        async with connect(url) as bob:
            await bob.send("bob")
            await expect(bob, "bob joined.")
            await expect(alice, "bob joined.")
            await alice.send("hello bob")
            await expect(alice, "alice: hello bob")
            await expect(bob, "alice: hello bob")
            await bob.send("hi alice, 한국어 too")
            await expect(alice, "bob: hi alice, 한국어 too")
            await expect(bob, "bob: hi alice, 한국어 too")
            async with connect(url) as impostor:
                await impostor.send("alice")
                await expect(impostor, "Username already taken.")
                try:
                    extra = await asyncio.wait_for(impostor.recv(), 10)
                    raise AssertionError(f"the refused user got {extra!r}")
                except ConnectionClosed:
                    pass
        # bob's connection closed: alice hears of it.
        await expect(alice, "bob left.")
        # The name is free again.
        async with connect(url) as bob2:
            await bob2.send("bob")
            await expect(bob2, "bob joined.")
            await expect(alice, "bob joined.")
    print("axum chat port: joins, messages, a taken name, leaves: ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
