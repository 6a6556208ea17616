"""Who a request acts for: a tenant, the API key's name, and whether it may see every tenant."""

from __future__ import annotations

from dataclasses import dataclass

from ..store.tables import DEFAULT_TENANT


@dataclass(frozen=True)
class Principal:
    tenant: str
    key_name: str | None = None
    is_admin: bool = False

    @property
    def scope(self) -> str | None:
        """The tenant whose records this principal sees; None: every tenant (an admin)."""
        return None if self.is_admin else self.tenant


# Who acts while no API keys exist (auth off): the one default tenant, with every right.
DEFAULT_PRINCIPAL = Principal(tenant=DEFAULT_TENANT, key_name=None, is_admin=True)
