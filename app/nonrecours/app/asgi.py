"""Two ASGI helpers the API's gate (:mod:`nonrecours.app.service`) and the agents' page
(:mod:`nonrecours.app.web`) share: read a request's whole body up to a limit before anything
parses it, and hand the body read to the application."""

from __future__ import annotations

import asyncio


async def read_body(scope, receive, limit: int) -> bytes | None:
    """The whole body, read before anything parses it; None past ``limit`` bytes (a declared
    length over the limit is refused before a byte is read)."""
    declared = dict(scope.get("headers") or []).get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            return None
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes):
    """An ASGI ``receive`` that gives ``body`` once, then waits for the client to go."""
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # nothing more: the server cancels this on disconnect
        return {"type": "http.disconnect"}

    return receive
