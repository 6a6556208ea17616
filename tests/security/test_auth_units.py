"""The pure rules of auth/: key format and hash, the key cache, rate-limit settings and headers, route
rules, Host and Origin rules, quotas, and the audit writer. No Ray, no HTTP."""

from __future__ import annotations

import asyncio
import time

import pytest

from sienn_ray.auth import keys
from sienn_ray.auth.audit import AuditWriter, target_id
from sienn_ray.auth.quotas import capped_priority, check_job, check_storage, default_quota, parse_quotas, parse_size
from sienn_ray.auth.rate_limits import Decision, WindowLimiter, parse_rate_limits
from sienn_ray.auth.resolver import MISS, KeyResolver
from sienn_ray.auth.routes import rule_for
from sienn_ray.auth.web import host_allowed, host_name, origin_allowed, remote_peer
from sienn_ray.errors import BadRequest, QuotaExceeded
from sienn_ray.schemas.auth import ApiKeyRecord, AuditEntry, Quota, QuotaOverrides
from sienn_ray.schemas.common import utcnow
from sienn_ray.schemas.jobs import TrainingConfig
from sienn_ray.settings import Settings, is_loopback_name


def test_keys_have_one_format_and_verify_only_against_their_own_hash():
    new = keys.generate_key()
    assert keys.key_id_of(new.key) == new.key_id and new.key.startswith("sienn_")
    assert new.key not in repr(new)
    stored = keys.hash_key(new.key)
    assert new.key not in stored and new.key_id not in stored and stored.startswith("scrypt$")
    assert keys.hash_key(new.key) != stored  # salted
    assert keys.verify_key(new.key, stored)
    other = keys.generate_key()
    assert not keys.verify_key(other.key, stored)
    assert not keys.verify_key(new.key, "scrypt$garbage") and not keys.verify_key(new.key, "md5$1$2$3$00$00")
    for bad in ("", "sienn_", new.key + "x", new.key.replace("sienn_", "other_"), "Bearer " + new.key):
        assert keys.key_id_of(bad) is None


class _Lookup:
    def __init__(self):
        self.records: dict[str, ApiKeyRecord] = {}
        self.reads = 0

    def get_key(self, key_id):
        self.reads += 1
        return self.records.get(key_id)

    def active_key_count(self):
        return sum(1 for r in self.records.values() if r.revoked_at is None)


def _record(new, name="alice", **fields) -> ApiKeyRecord:
    return ApiKeyRecord(key_id=new.key_id, name=name, tenant=fields.pop("tenant", name), key_hash=keys.hash_key(new.key),
                        created_at=utcnow(), **fields)


def test_resolver_caches_verified_keys_and_sees_a_revocation_after_its_ttl(monkeypatch):
    lookup, now = _Lookup(), [100.0]
    resolver = KeyResolver(lookup, Quota(running_jobs=3), ttl_s=5.0, clock=lambda: now[0])
    assert not resolver.keys_exist()
    new = keys.generate_key()
    lookup.records[new.key_id] = _record(new, quota=QuotaOverrides(queued_jobs=7))
    assert resolver.cached(new.key) is MISS
    principal = resolver.resolve(new.key)
    assert (principal.tenant, principal.key_name, principal.is_admin) == ("alice", "alice", False)
    assert (principal.quota.running_jobs, principal.quota.queued_jobs) == (3, 7)  # default, then the override
    assert resolver.cached(new.key) == principal and lookup.reads == 1
    hashed = []
    monkeypatch.setattr("sienn_ray.auth.resolver.verify_key", lambda *a: hashed.append(a) or True)
    now[0] += 6  # past the TTL: read again, but the same stored hash needs no new scrypt
    assert resolver.cached(new.key) is MISS and resolver.resolve(new.key) == principal and not hashed
    lookup.records[new.key_id] = lookup.records[new.key_id].model_copy(update={"revoked_at": utcnow()})
    assert resolver.cached(new.key) == principal  # within the TTL: still the cached answer
    now[0] += 6
    assert resolver.cached(new.key) is MISS and resolver.resolve(new.key) is None
    assert resolver.cached(new.key) is None  # refusals are cached too


def test_resolver_refuses_malformed_unknown_and_wrong_secret_keys():
    lookup = _Lookup()
    resolver = KeyResolver(lookup, Quota())
    real = keys.generate_key()
    lookup.records[real.key_id] = _record(real)
    forged = real.key[:-5] + "AAAAA"
    assert resolver.resolve(forged) is None
    assert resolver.resolve("not a key") is None and lookup.reads == 1  # a malformed key reads nothing
    assert resolver.resolve(keys.generate_key().key) is None
    assert resolver.keys_exist()


def test_rate_limit_settings():
    assert parse_rate_limits("off") is None
    assert parse_rate_limits("") == {"standard": "100/minute", "training": "10/minute", "inference": "50/minute"}
    assert parse_rate_limits("standard=5/2seconds")["standard"] == "5/2seconds"
    for bad in ("standard", "bogus=1/minute", "standard=lots"):
        with pytest.raises(ValueError):
            parse_rate_limits(bad)


def test_moving_window_counts_per_caller_and_says_when_to_retry():
    limiter = WindowLimiter()
    first = [limiter.hit("3/2seconds", "standard", "key:a") for _ in range(3)]
    assert [d.allowed for d in first] == [True] * 3 and [d.remaining for d in first] == [2, 1, 0]
    refused = limiter.hit("3/2seconds", "standard", "key:a")
    assert not refused.allowed
    headers = refused.headers(now=time.time())
    assert headers["X-RateLimit-Limit"] == "3" and headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(headers["Retry-After"]) <= 2 and int(headers["X-RateLimit-Reset"]) >= int(time.time())
    assert limiter.hit("3/2seconds", "standard", "key:b").allowed  # another caller's window
    assert limiter.hit("3/2seconds", "training", "key:a").allowed  # another class
    assert limiter.hit("100/minute", "standard", "key:a").allowed  # another limit (another app's settings)
    assert "Retry-After" not in first[0].headers()
    assert Decision(**first[0].to_dict()) == first[0]


def test_route_rules():
    assert rule_for("GET", "/health").open and rule_for("GET", "/console/js/api.js").open
    assert rule_for("GET", "/").open and not rule_for("GET", "/docs").open
    assert rule_for("POST", "/api/start-finetuning").limit_class == "training"
    assert rule_for("POST", "/api/export-model/job_1").limit_class == "training"
    assert rule_for("POST", "/v1/fine_tuning/jobs").limit_class == "training"
    test_model = rule_for("POST", "/api/test-model")
    assert test_model.limit_class == "inference" and not test_model.audited
    cancel = rule_for("POST", "/api/jobs/j/cancel")
    assert cancel.limit_class == "standard" and cancel.audited
    assert rule_for("DELETE", "/api/datasets/d").audited
    assert not rule_for("GET", "/api/jobs").audited
    unknown = rule_for("POST", "/no/such")
    assert unknown.limit_class == "standard" and unknown.audited and not unknown.open


@pytest.mark.parametrize("host,loopback", [("localhost", True), ("127.0.0.1", True), ("127.8.9.1", True),
                                           ("::1", True), ("[::1]", True), ("api.localhost", True),
                                           ("0.0.0.0", False), ("10.0.0.1", False), ("evil.example", False),
                                           ("localhost.evil.example", False), ("", False)])
def test_loopback_names(host, loopback):
    assert is_loopback_name(host) is loopback


def test_host_rule_refuses_rebinding_on_loopback():
    assert host_name("[::1]:8000") == "::1" and host_name("127.0.0.1:8000") == "127.0.0.1"
    none = frozenset()
    assert host_allowed("127.0.0.1:8000", True, none) and host_allowed("localhost:8000", True, none)
    assert host_allowed("[::1]:8000", True, none)
    assert not host_allowed("evil.example:8000", True, none) and not host_allowed(None, True, none)
    assert host_allowed("sienn.internal", True, frozenset({"sienn.internal"}))
    assert host_allowed("anything.example", False, none)  # a public listener answers any name ...
    assert not host_allowed("other.example", False, frozenset({"sienn.example"}))  # ... unless names are set


def test_remote_peer_is_a_non_loopback_address():
    assert remote_peer(("203.0.113.7", 1)) and remote_peer(("fe80::1", 1)) and remote_peer(("10.0.0.8", 1))
    assert not remote_peer(("127.0.0.1", 1)) and not remote_peer(("::1", 1)) and not remote_peer(("127.8.0.1", 1))
    assert not remote_peer(None) and not remote_peer(("testclient", 50000))  # in-process clients name no IP


def test_origin_rule():
    none = frozenset()
    assert origin_allowed("http://127.0.0.1:8000", "127.0.0.1:8000", none)
    assert not origin_allowed("http://127.0.0.1:9999", "127.0.0.1:8000", none)
    assert not origin_allowed("http://evil.example", "127.0.0.1:8000", none)
    assert not origin_allowed("null", "127.0.0.1:8000", none)
    assert origin_allowed("https://console.example", "api.example", frozenset({"https://console.example"}))


def test_auth_default_follows_the_listener(monkeypatch):
    monkeypatch.delenv("SIENN_AUTH", raising=False)
    monkeypatch.setenv("SIENN_HTTP_HOST", "127.0.0.1")
    assert not Settings().auth_required
    monkeypatch.setenv("SIENN_HTTP_HOST", "0.0.0.0")
    assert Settings().auth_required
    monkeypatch.setenv("SIENN_AUTH", "off")
    assert not Settings().auth_required
    monkeypatch.setenv("SIENN_HTTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SIENN_AUTH", "required")
    assert Settings().auth_required
    monkeypatch.setenv("SIENN_AUTH", "maybe")
    with pytest.raises(ValueError, match="SIENN_AUTH"):
        Settings().auth_required


def test_quota_settings_and_checks():
    assert parse_size("20GiB") == 20 * 1024**3 and parse_size("1024") == 1024 and parse_size("1.5KiB") == 1536
    quota = default_quota("running_jobs=1, storage_bytes=1MiB")
    assert quota.running_jobs == 1 and quota.storage_bytes == 1024**2 and quota.queued_jobs == Quota().queued_jobs
    assert quota.with_overrides(parse_quotas("running_jobs=4")).running_jobs == 4
    with pytest.raises(BadRequest, match="Unknown quota"):
        parse_quotas("workers=3")
    check_job(None, TrainingConfig(num_workers=64, cpus_per_worker=64))
    with pytest.raises(QuotaExceeded) as err:
        check_job(Quota(cpus_per_job=4), TrainingConfig(num_workers=3, cpus_per_worker=2))
    assert err.value.extra["quota"] == "cpus_per_job" and err.value.status_code == 429
    with pytest.raises(QuotaExceeded, match="gpus_per_job"):
        check_job(Quota(gpus_per_job=0), TrainingConfig(use_gpu=True))
    assert capped_priority(Quota(max_priority=10), 90) == 10 and capped_priority(None, 90) == 90
    check_storage(Quota(storage_bytes=10), 5, 5)
    with pytest.raises(QuotaExceeded, match="storage_bytes"):
        check_storage(Quota(storage_bytes=10), 5, 6)


def test_audit_target_ids():
    assert target_id({"job_id": "job_1"}, b'{"job_id": "job_2"}') == "job_1"
    assert target_id({}, b'{"dataset_id": "ds_1", "name": "x"}') == "ds_1"
    assert target_id({}, b"not json") is None and target_id({}, None) is None
    assert target_id({"name": "alice"}, None) == "alice"


def _entry(i: int) -> AuditEntry:
    return AuditEntry(at=utcnow(), tenant="t", method="POST", route="/r", path=f"/r/{i}", status=200)


def test_audit_writer_batches_keeps_failed_batches_and_bounds_its_queue():
    written, failures = [], [2]

    async def write(batch):
        if failures[0]:
            failures[0] -= 1
            raise RuntimeError("registry restarting")
        written.append(list(batch))

    async def scenario():
        writer = AuditWriter(write, flush_s=0.01, max_batch=3, max_pending=100)
        for i in range(5):
            writer.record(_entry(i))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if sum(map(len, written)) == 5:
                break
        overflow = AuditWriter(write, flush_s=10, max_pending=2)
        for i in range(4):
            overflow.record(_entry(i))
        overflow._task.cancel()
        return overflow

    overflow = asyncio.run(scenario())
    assert [e.path for batch in written for e in batch] == [f"/r/{i}" for i in range(5)]  # none lost, in order
    assert max(map(len, written)) <= 3
    assert overflow.dropped == 2
