"""ASGI plumbing the API's gate (:mod:`nonrecours.app.service`) and the agents' page
(:mod:`nonrecours.app.web`) share: read a request's whole body up to a limit before anything
parses it (a body too large is refused unread), hand the body read to the application, answer in
JSON, and rewrite a response's body. Plain ASGI: no web framework is imported."""

from __future__ import annotations

import asyncio
import json


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


async def send_json(send, status: int, body: dict, headers: list | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def rewritten(send, when, rewrite):
    """An ASGI ``send`` that, for a response whose status passes ``when``, holds the whole body,
    sends ``rewrite(body)`` instead with its length; every other response streams through."""
    start: dict | None = None
    held: list[bytes] = []

    async def wrapped(message):
        nonlocal start
        if message["type"] == "http.response.start":
            if not when(message["status"]):
                await send(message)
                return
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        held.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = rewrite(b"".join(held))
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return wrapped
