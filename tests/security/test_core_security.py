"""Keys, the audit trail and the quotas only the registry can count exactly: RegistryCore over a real
SQLite store and a fake cluster (no Ray)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "jobs"))
from jobs_fakes import Clock, FakeCluster, dataset, job  # noqa: E402

from sienn_ray.auth.keys import generate_key, hash_key  # noqa: E402
from sienn_ray.errors import KeyExists, KeyNotFound, QuotaExceeded  # noqa: E402
from sienn_ray.jobs.core import RegistryCore  # noqa: E402
from sienn_ray.schemas.auth import ApiKeyRecord, AuditEntry  # noqa: E402
from sienn_ray.schemas.common import utcnow  # noqa: E402
from sienn_ray.schemas.jobs import JobPhase  # noqa: E402
from sienn_ray.store import ReadStore, Store  # noqa: E402


@pytest.fixture()
def env(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    clock, cluster = Clock(), FakeCluster(cpus=4)
    core = RegistryCore(Store(url), cluster, clock=clock)
    core.put_dataset(dataset(0, tenant="alice"))
    core.put_dataset(dataset(1, tenant="bob"))
    yield core, cluster, ReadStore(url)
    core.store.close()


def _key(name: str, **fields) -> ApiKeyRecord:
    new = generate_key()
    return ApiKeyRecord(key_id=new.key_id, name=name, tenant=fields.pop("tenant", name), key_hash=hash_key(new.key),
                        created_at=utcnow(), **fields)


def test_keys_are_stored_hashed_revoked_and_names_never_reused(env):
    core, _, reader = env
    rec = core.create_key(_key("alice"))
    assert reader.get_key(rec.key_id) == rec and reader.active_key_count() == 1
    with pytest.raises(KeyExists):
        core.create_key(_key("alice"))
    revoked = core.revoke_key("alice")
    assert revoked.revoked_at is not None and reader.get_key(rec.key_id).revoked_at == revoked.revoked_at
    assert core.revoke_key("alice").revoked_at == revoked.revoked_at  # revoking twice changes nothing
    assert reader.active_key_count() == 0
    with pytest.raises(KeyExists):  # not even after revocation: the audit trail names keys
        core.create_key(_key("alice"))
    with pytest.raises(KeyNotFound):
        core.revoke_key("nobody")
    assert [k.name for k in reader.list_keys()] == ["alice"]


def test_audit_entries_page_newest_first_and_filter_by_key_and_tenant(env):
    core, _, reader = env
    entries = [AuditEntry(at=utcnow(), key_name=k, tenant=t, method="POST", route="/api/x", path="/api/x",
                          status=200) for k, t in [("a", "t1"), ("b", "t2"), ("a", "t1"), ("c", "t1")]]
    assert core.add_audit(entries[:2]) == 2 and core.add_audit(entries[2:]) == 2
    page, total = reader.list_audit(limit=3)
    assert total == 4 and [e.key_name for e in page] == ["c", "a", "b"]
    assert [e.seq for e in page] == sorted((e.seq for e in page), reverse=True)
    assert reader.list_audit(key_name="a")[1] == 2 and reader.list_audit(tenant="t1")[1] == 3
    assert [e.key_name for e in reader.list_audit(limit=2, offset=2)[0]] == ["b", "a"]


def test_queued_quota_is_counted_per_tenant_in_the_registry(env):
    core, cluster, reader = env
    cluster.free_now = {"CPU": 0, "GPU": 0}  # nothing launches: every job stays queued
    for _ in range(2):
        core.submit_job(job("ds_0000000000000000", tenant="alice"), queued_quota=2)
    before = reader.list_jobs()[1]
    with pytest.raises(QuotaExceeded) as err:
        core.submit_job(job("ds_0000000000000000", tenant="alice"), queued_quota=2)
    assert err.value.extra["quota"] == "queued_jobs" and reader.list_jobs()[1] == before  # nothing stored
    core.submit_job(job("ds_0000000000000001", tenant="bob"), queued_quota=2)  # another tenant's count


def test_running_quota_holds_a_tenant_back_without_blocking_the_queue(env):
    core, cluster, reader = env
    first = job("ds_0000000000000000", tenant="alice")
    first.running_quota = 1
    second = job("ds_0000000000000000", tenant="alice")
    second.running_quota = 1
    core.submit_job(first)
    core.submit_job(second)
    third = core.submit_job(job("ds_0000000000000001", tenant="bob"))  # behind alice's second in the queue
    launched = {job_id for job_id, _, _ in cluster.launched}
    assert first.job_id in launched and third.job_id in launched and second.job_id not in launched
    waiting = reader.get_job(second.job_id)
    assert waiting.phase == JobPhase.QUEUED and "running_jobs quota" in waiting.message
    core.finish(first.job_id, "completed", "done")
    assert second.job_id in {job_id for job_id, _, _ in cluster.launched}


def test_storage_quota_is_checked_where_uploads_are_serialized(env):
    core, _, reader = env
    used = reader.storage_used("alice")
    assert used == dataset().size_bytes
    core.put_dataset(dataset(2, tenant="alice"), storage_quota=used + dataset().size_bytes)
    with pytest.raises(QuotaExceeded, match="storage_bytes"):
        core.put_dataset(dataset(3, tenant="alice"), storage_quota=2 * dataset().size_bytes)
    assert reader.get_dataset("ds_0000000000000003") is None
    assert core.put_dataset(dataset(2, tenant="alice"), storage_quota=0).dataset_id  # already stored: no new bytes
