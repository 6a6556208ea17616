"""Who a request acts for: a tenant, the API key's name, and whether it may see every tenant."""

from __future__ import annotations

from dataclasses import dataclass

from ..schemas.auth import Quota
from ..store.tables import DEFAULT_TENANT


@dataclass(frozen=True)
class Principal:
    tenant: str
    key_name: str | None = None
    is_admin: bool = False
    quota: Quota | None = None  # None: no quotas (auth off: the operator's own default tenant)

    @property
    def scope(self) -> str | None:
        """The tenant whose records this principal sees; None: every tenant (an admin)."""
        return None if self.is_admin else self.tenant


# Who acts with auth off and no key sent: the one default tenant, with every right and no quota.
DEFAULT_PRINCIPAL = Principal(tenant=DEFAULT_TENANT, key_name=None, is_admin=True)
