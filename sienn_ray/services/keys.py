"""API keys: create one (the key is returned once, only its hash is stored), list them, revoke one."""

from __future__ import annotations

from ..auth.keys import generate_key, hash_key
from ..auth.quotas import parse_quotas
from ..schemas.auth import ApiKeyInfo, ApiKeyRecord
from ..schemas.common import utcnow
from .context import Services


async def create_key(services: Services, name: str, *, tenant: str | None = None, is_admin: bool = False,
                     quotas: str = "") -> tuple[ApiKeyInfo, str]:
    """A new key for ``tenant`` (default: its name); returns its record and the key, which is not kept."""
    new = generate_key()
    rec = ApiKeyRecord(key_id=new.key_id, name=name, tenant=tenant or name, is_admin=is_admin,
                       key_hash=hash_key(new.key), created_at=utcnow(), quota=parse_quotas(quotas))
    stored = await services.registry.create_key(rec)
    return stored.info(), new.key


def list_keys(services: Services) -> list[ApiKeyInfo]:
    return [rec.info() for rec in services.reader.list_keys()]


async def revoke_key(services: Services, name: str) -> ApiKeyInfo:
    """Revoke the key named ``name``; API replicas refuse it within their key cache time."""
    return (await services.registry.revoke_key(name)).info()
