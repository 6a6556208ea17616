"""API keys: their format, how they are made, and the salted hash that is all the store keeps.

A key is ``sienn_<key_id>_<secret>``: ``key_id`` (16 hex digits) is public and
names the stored record; ``secret`` is 256 random bits (43 URL-safe base64
characters). The store keeps a salted scrypt hash of the whole key. Keys are
random, so scrypt's cost is not what protects them; it makes a leaked table
useless even for a weak key someone may have imported, and the verified result
is cached per process (``resolver.py``), so a request pays it once per key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "sienn_"
_KEY_RE = re.compile(r"^sienn_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
# scrypt cost: 16 MiB and tens of milliseconds per hash.
_N, _R, _P, _DKLEN = 2**14, 8, 1, 32


@dataclass(frozen=True)
class NewKey:
    key_id: str
    key: str  # the whole key: shown once, never stored

    def __repr__(self) -> str:  # never print the secret by accident
        return f"NewKey(key_id={self.key_id!r}, key=<hidden>)"


def generate_key() -> NewKey:
    key_id = secrets.token_hex(8)
    return NewKey(key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}")


def key_id_of(presented: str) -> str | None:
    """The key id of a well-formed key; None for anything else."""
    match = _KEY_RE.match(presented)
    return match.group(1) if match else None


def hash_key(key: str) -> str:
    """``scrypt$N$r$p$salt$digest`` (hex), with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(key.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_key(key: str, stored: str) -> bool:
    """Whether ``key`` hashes to ``stored`` (constant-time compare)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = bytes.fromhex(digest)
        actual = hashlib.scrypt(key.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def fingerprint(presented: str) -> str:
    """A fast digest of a presented key, to cache verified keys by (never stored)."""
    return hashlib.sha256(presented.encode()).hexdigest()
