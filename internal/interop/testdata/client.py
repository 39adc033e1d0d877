#!/usr/bin/env python3
"""An independent WebSocket peer for porthole's interop tests.

Python's websockets client streams TOTAL random bytes to URL in binary
messages while it reads what comes back, closes with 1000 once all is sent
(its end of stream), reads on until the gateway's Close, and prints one
JSON line: byte counts, SHA-256 of each direction, the subprotocol and the
Close code it received.

usage: client.py URL TOTAL [CA_PEM_FILE]
"""

import asyncio
import hashlib
import json
import os
import ssl
import sys

import websockets

CHUNK = 64 << 10


async def main(url, total, ca_file):
    ctx = None
    if ca_file:
        ctx = ssl.create_default_context(cafile=ca_file)
    sent_hash, got_hash = hashlib.sha256(), hashlib.sha256()
    received = 0
    # The client offers permessage-deflate by default: the gateway must
    # decline it.
    async with websockets.connect(
        url, subprotocols=["binary"], ssl=ctx, max_size=None, close_timeout=60
    ) as ws:

        async def send():
            sent = 0
            while sent < total:
                buf = os.urandom(min(CHUNK, total - sent))
                sent_hash.update(buf)
                await ws.send(buf)
                sent += len(buf)
            await ws.close(code=1000, reason="sent everything")
            return sent

        async def receive():
            nonlocal received
            async for msg in ws:
                if isinstance(msg, str):
                    raise SystemExit("the gateway sent a text message")
                got_hash.update(msg)
                received += len(msg)

        sent, _ = await asyncio.gather(send(), receive())
    extensions = ",".join(e.name for e in getattr(ws, "extensions", []))
    print(
        json.dumps(
            {
                "sent": sent,
                "sent_sha256": sent_hash.hexdigest(),
                "received": received,
                "received_sha256": got_hash.hexdigest(),
                "subprotocol": ws.subprotocol,
                "extensions": extensions,
                "close_code": ws.close_code,
                "close_reason": ws.close_reason,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None))
