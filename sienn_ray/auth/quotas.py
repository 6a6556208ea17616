"""Per-key quotas: the server's defaults (``SIENN_QUOTAS``), a key's overrides, and the checks.

Counts are per tenant (a key's records belong to its tenant; keys sharing a
tenant share its usage). What only the registry can count exactly (queued jobs,
running jobs, storage under concurrent uploads) is checked there, serialized
with every other write; what a request alone decides (its CPUs, GPUs and
priority) is checked here.
"""

from __future__ import annotations

import re

from ..errors import BadRequest, QuotaExceeded
from ..schemas.auth import Quota, QuotaOverrides
from ..schemas.jobs import TrainingConfig

# Binary units only, read by hand: a dependency for four suffixes is not worth it.
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)?\s*$")
_UNITS = {None: 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}


def parse_size(text: str) -> int:
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (bytes, or a number with B, KiB, MiB, GiB or TiB)")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def parse_quotas(text: str) -> QuotaOverrides:
    """``running_jobs=2,queued_jobs=20,cpus_per_job=8,gpus_per_job=1,storage_bytes=20GiB,max_priority=50``."""
    values: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or name not in QuotaOverrides.model_fields:
            raise BadRequest(f"Unknown quota {name!r}; known: {', '.join(QuotaOverrides.model_fields)}")
        values[name] = parse_size(value) if name == "storage_bytes" else value
    return QuotaOverrides.model_validate(values)


def default_quota(text: str) -> Quota:
    """The quotas every key has unless it overrides them."""
    return Quota().with_overrides(parse_quotas(text))


def check_job(quota: Quota | None, config: TrainingConfig) -> None:
    """CPUs and GPUs the whole job asks for, against the key's quota (429 naming the quota)."""
    if quota is None:
        return
    cpus = config.cpus_per_worker * config.num_workers
    gpus = float(config.num_workers) if config.use_gpu else 0.0
    for name, asked, limit in (("cpus_per_job", cpus, quota.cpus_per_job), ("gpus_per_job", gpus, quota.gpus_per_job)):
        if asked > limit:
            raise QuotaExceeded(f"Quota {name} exceeded: the job asks for {asked:g}, the key allows {limit:g}",
                                quota=name, requested=asked, limit=limit)


def capped_priority(quota: Quota | None, priority: int) -> int:
    """The request's priority, lowered to the key's cap."""
    return priority if quota is None else min(priority, quota.max_priority)


def check_storage(quota: Quota | None, used: int, adding: int) -> None:
    """Refuse when the tenant's datasets and exports would pass its storage quota."""
    if quota is not None and used + adding > quota.storage_bytes:
        raise QuotaExceeded(f"Quota storage_bytes exceeded: {used} bytes used + {adding} new > {quota.storage_bytes}",
                            quota="storage_bytes", used=used, requested=adding, limit=quota.storage_bytes)


def check_queued(quota_limit: int | None, queued: int) -> None:
    if quota_limit is not None and queued >= quota_limit:
        raise QuotaExceeded(f"Quota queued_jobs exceeded: {queued} jobs already wait in the queue "
                            f"(the key allows {quota_limit})", quota="queued_jobs", queued=queued, limit=quota_limit)
