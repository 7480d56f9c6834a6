"""Who may call the API, and how often: API keys checked by digest, and a rate limit per key.

Where it sits: the API's request gate (:mod:`nonrecours.app.service`) asks these before a request
reaches the service. Keys come from the secrets (:mod:`nonrecours.serving.secrets`); only their
SHA-256 digests are kept in memory, and a key is only ever named by a short digest of it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus

logger = logging.getLogger("nonrecours.serving")

SECONDS_PER_MINUTE = 60.0
KEY_ID_CHARS = 12


def digests(keys: list[str]) -> list[bytes]:
    return [hashlib.sha256(k.encode()).digest() for k in keys]


def authorised(authorization: str, known: list[bytes]) -> bool:
    """``Authorization: Bearer <key>`` carries one of the keys whose digests are ``known``."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    digest = hashlib.sha256(token.strip().encode()).digest()
    return any(secrets.compare_digest(digest, k) for k in known)


def key_id(authorization: str) -> str:
    """A short, stable id of the API key a request carried (never the key): the outcome's sender."""
    token = authorization.removeprefix("Bearer ").strip()
    return "key-" + hashlib.sha256(token.encode()).hexdigest()[:KEY_ID_CHARS] if token else "unknown"


class RateLimiter:
    """A token bucket per API key id, in this worker: ``per_minute`` requests a minute, in bursts
    of up to as many. :meth:`wait` takes a token, or says how many seconds until one is free."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self.buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, time)

    def wait(self, key: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        rate = self.per_minute / SECONDS_PER_MINUTE
        tokens, then = self.buckets.get(key, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - then) * rate)
        if tokens >= 1:
            self.buckets[key] = (tokens - 1, now)
            return 0.0
        self.buckets[key] = (tokens, now)
        logger.warning("rate limit: %s over %d requests a minute", key, self.per_minute)
        return (1 - tokens) / rate


@dataclass(frozen=True)
class Refusal:
    """A request refused before it reaches the service: its status, JSON body and headers."""

    status: int
    body: dict
    headers: tuple[tuple[bytes, bytes], ...] = ()


class Gate:
    """The API's rules for whoever calls it: a configured key (401), within its rate (429), a JSON
    body (415). ``keys()`` gives the configured API keys, read the first time they are needed."""

    def __init__(self, keys: Callable[[], list[str]], per_minute: int):
        self.keys, self.limiter = keys, RateLimiter(per_minute)
        self._digests: list[bytes] | None = None

    def caller(self, authorization: str) -> Refusal | None:
        if self._digests is None:
            self._digests = digests(self.keys())
        if not authorised(authorization, self._digests):
            said = {"error": "missing or invalid API key", "hint": "send the header 'Authorization: Bearer <key>'"}
            return Refusal(HTTPStatus.UNAUTHORIZED, said, ((b"www-authenticate", b"Bearer"),))
        wait = self.limiter.wait(key_id(authorization))
        if wait > 0:
            said = {
                "error": f"rate limit: over {self.limiter.per_minute} requests a minute for this API key "
                f"(serving.rate_limit_per_minute); retry in {wait:.0f} s"
            }
            return Refusal(HTTPStatus.TOO_MANY_REQUESTS, said, ((b"retry-after", str(int(wait) + 1).encode()),))
        return None

    @staticmethod
    def body(content_type: bytes | None) -> Refusal | None:
        """Every protected route takes JSON (BentoML would otherwise try to parse a multipart body, and
        fails with a 500 on one without a boundary); a request without a body's type passes."""
        if content_type is None or content_type.split(b";")[0].strip().lower() == b"application/json":
            return None
        said = {
            "error": "Content-Type must be application/json",
            "hint": "send the body as JSON with 'Content-Type: application/json'",
        }
        return Refusal(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, said)
