"""Secrets come from outside the code: the environment, or a secrets file in ``KEY=value`` form
(what ``nonrecours keys`` writes). The environment wins over the file.

- ``NONRECOURS_PSEUDONYM_KEY``: the key of the decision log's household pseudonyms (32+ random bytes).
  Keep it: with another key, outcomes no longer link to earlier scores.
- ``NONRECOURS_PSEUDONYM_KEYS_RETIRED``: earlier pseudonym keys, comma-separated, newest first
  (``nonrecours keys --rotate`` moves the current key here). They only match: outcomes still find
  decisions made under them. Drop one once the retention period has purged every row made with it.
- ``NONRECOURS_API_KEYS``: comma-separated keys the API accepts as ``Authorization: Bearer ...``.
"""

from __future__ import annotations

import os
import secrets as _random
from collections.abc import Mapping
from pathlib import Path

from nonrecours.core.io import PRIVATE

PSEUDONYM_KEY = "NONRECOURS_PSEUDONYM_KEY"
RETIRED_KEYS = "NONRECOURS_PSEUDONYM_KEYS_RETIRED"
API_KEYS = "NONRECOURS_API_KEYS"
MIN_LENGTH = 16
KEY_BYTES, API_KEY_BYTES = 32, 24
"""Random bytes behind a new pseudonymisation key and a new API key (URL-safe base64 text)."""
PSEUDONYM_MIN_LENGTH = 43
"""A pseudonymisation key carries at least 32 bytes of entropy: 43 characters of URL-safe base64."""
PSEUDONYM_MIN_DISTINCT = 16
"""Distinct characters a pseudonymisation key must hold (a long run of one character is no key)."""
SHOWN = 40
"""Characters of a malformed line quoted in an error (enough to find it, not a whole secret)."""


def read_secrets_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines; blank lines and ``#`` comments ignored."""
    values = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}:{n}: expected KEY=value, got {line[:SHOWN]!r}")
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def resolve(path: Path | None, environ: Mapping[str, str]) -> dict[str, str]:
    """The secrets file's values with those of ``environ`` (the process environment, which the
    application layer reads and passes) on top."""
    values = read_secrets_file(path) if path is not None else {}
    values.update({k: v for k, v in environ.items() if k in (PSEUDONYM_KEY, RETIRED_KEYS, API_KEYS)})
    return values


def _strong(key: str, name: str) -> bytes:
    if len(key) < PSEUDONYM_MIN_LENGTH or len(set(key)) < PSEUDONYM_MIN_DISTINCT:
        raise ValueError(
            f"{name} must hold a secret of at least 32 random bytes ({PSEUDONYM_MIN_LENGTH}+ characters of "
            "URL-safe base64, "
            f"{PSEUDONYM_MIN_DISTINCT}+ distinct): set it in the environment or pass --secrets FILE (create "
            "one with `nonrecours keys --out FILE`)"
        )
    return key.encode()


def pseudonym_key(values: dict[str, str]) -> bytes:
    return _strong(values.get(PSEUDONYM_KEY, ""), PSEUDONYM_KEY)


def retired_keys(values: dict[str, str]) -> list[bytes]:
    """The retired pseudonym keys, newest first (each as strong as a current one)."""
    return [_strong(k.strip(), RETIRED_KEYS) for k in values.get(RETIRED_KEYS, "").split(",") if k.strip()]


def api_keys(values: dict[str, str]) -> list[str]:
    keys = [k.strip() for k in values.get(API_KEYS, "").split(",") if k.strip()]
    short = [k for k in keys if len(k) < MIN_LENGTH]
    if not keys or short:
        raise ValueError(
            f"{API_KEYS} must list at least one API key of {MIN_LENGTH}+ characters (comma-separated): "
            "set it in the environment or pass --secrets FILE (create one with `nonrecours keys --out FILE`)"
        )
    return keys


def new_secrets_file(path: Path) -> bool:
    """Write fresh random keys to ``path`` (mode 600) unless it exists; True if written."""
    path = Path(path)
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        "# nonrecours secrets: keep this file private and out of version control.\n"
        "# Losing the pseudonym key unlinks outcomes from earlier scores in the decision log.\n"
        f"{PSEUDONYM_KEY}={_random.token_urlsafe(KEY_BYTES)}\n"
        f"{API_KEYS}={_random.token_urlsafe(API_KEY_BYTES)}\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return True


def rotate_pseudonym_key(path: Path) -> None:
    """Give the secrets file at ``path`` a new pseudonym key, the current one moving to the front
    of the retired keys; every other line is kept. Written to a private temporary file, then
    renamed over the old one."""
    path = Path(path)
    values = read_secrets_file(path)
    current = pseudonym_key(values)
    retired = [current.decode(), *(k.decode() for k in retired_keys(values))]
    lines = [
        line
        for line in path.read_text().splitlines()
        if line.partition("=")[0].strip() not in (PSEUDONYM_KEY, RETIRED_KEYS)
    ]
    lines += [f"{PSEUDONYM_KEY}={_random.token_urlsafe(KEY_BYTES)}", f"{RETIRED_KEYS}={','.join(retired)}"]
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
