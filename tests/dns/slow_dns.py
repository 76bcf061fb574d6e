"""A DNS server on 127.0.0.2:53 (UDP) that answers every A query with 127.0.0.1 and
every other query with no answer, each after DELAY seconds: a resolver that stalls,
for the client's DNS test (scripts/test.sh runs it with /etc/resolv.conf pointing
here, inside a mount namespace of its own). Prints `ready` when it listens.
Usage: slow_dns.py DELAY
"""

import socket
import struct
import sys
import threading
import time

DELAY = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0


def answer(query: bytes) -> bytes:
    ident, _flags, qdcount = struct.unpack(">HHH", query[:6])
    # The question: labels up to the zero byte, then type and class.
    end = 12
    while query[end] != 0:
        end += 1 + query[end]
    question = query[12 : end + 5]
    qtype = struct.unpack(">H", query[end + 1 : end + 3])[0]
    header = struct.pack(">HHHHHH", ident, 0x8180, qdcount, 1 if qtype == 1 else 0, 0, 0)
    if qtype != 1:
        return header + question
    record = struct.pack(">HHHLH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
    return header + question + record


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.2", 53))
    print("ready", flush=True)
    while True:
        query, peer = sock.recvfrom(512)

        def reply(query=query, peer=peer) -> None:
            time.sleep(DELAY)
            sock.sendto(answer(query), peer)

        threading.Thread(target=reply, daemon=True).start()


if __name__ == "__main__":
    main()
