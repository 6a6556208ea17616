"""From a presented API key to the principal it acts as, without a store read (or a hash) per request.

Verified keys are cached by a fast digest of the key for ``ttl_s`` seconds;
then the key's record is read again, so a revocation is in force within
``ttl_s`` (``SIENN_KEY_CACHE_S``, default 5 s). scrypt runs again only when the
stored hash changed, so a key costs one scrypt per process.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from ..schemas.auth import ApiKeyRecord, Quota
from ..services.principal import Principal
from .keys import fingerprint, key_id_of, verify_key

MISS = object()  # ``cached`` has no fresh answer: call ``resolve`` (off the event loop)


class KeyLookup(Protocol):
    """What the resolver reads (``ReadStore`` in the API)."""

    def get_key(self, key_id: str) -> ApiKeyRecord | None: ...

    def active_key_count(self) -> int: ...


class KeyResolver:
    def __init__(self, lookup: KeyLookup, quota_defaults: Quota, ttl_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000):
        self.lookup, self.quota_defaults, self.ttl_s, self.clock = lookup, quota_defaults, ttl_s, clock
        self.max_entries = max_entries
        # fingerprint -> (checked at, the stored hash it was verified against or None, principal or None)
        self._entries: OrderedDict[str, tuple[float, str | None, Principal | None]] = OrderedDict()
        self._keys_exist: tuple[float, bool] | None = None
        self._lock = threading.Lock()

    def cached(self, presented: str):
        """The principal (or None: refused) if checked within ``ttl_s``; else ``MISS``."""
        with self._lock:
            entry = self._entries.get(fingerprint(presented))
        if entry is None or self.clock() - entry[0] > self.ttl_s:
            return MISS
        return entry[2]

    def resolve(self, presented: str) -> Principal | None:
        """The key's principal, or None for a malformed, unknown or revoked key (reads the store)."""
        digest = fingerprint(presented)
        with self._lock:
            previous = self._entries.get(digest)
        key_id = key_id_of(presented)
        rec = self.lookup.get_key(key_id) if key_id else None
        principal = None
        verified_hash = None
        if rec is not None and rec.revoked_at is None:
            already = previous is not None and previous[1] == rec.key_hash
            if already or verify_key(presented, rec.key_hash):
                verified_hash = rec.key_hash
                principal = Principal(tenant=rec.tenant, key_name=rec.name, is_admin=rec.is_admin,
                                      quota=self.quota_defaults.with_overrides(rec.quota))
        with self._lock:
            self._entries[digest] = (self.clock(), verified_hash, principal)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return principal

    def keys_exist(self) -> bool:
        """Whether any active key exists (checked again every ``ttl_s``)."""
        now = self.clock()
        if self._keys_exist is None or now - self._keys_exist[0] > self.ttl_s:
            self._keys_exist = (now, self.lookup.active_key_count() > 0)
        return self._keys_exist[1]
