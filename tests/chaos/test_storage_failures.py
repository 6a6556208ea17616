"""A full or read-only storage without Ray: 507/503 in the spec's format, nothing half-written, then it works.

The store and the registry core over a real SQLite file made full (SQLite's own page
limit) or read-only (``chattr +i``); the upload route in process over a real tmpfs
filled to the brim. tests/chaos/test_stack_chaos.py does the same through the real
Serve app of a running stack.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from storage_kit import dataset_record, fill_disk, mount_tmpfs, set_immutable, unmount

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "jobs"))
from jobs_fakes import FakeCluster, job  # noqa: E402

from sienn_ray.errors import InsufficientStorage, StorageUnavailable, storage_error  # noqa: E402
from sienn_ray.jobs.client import RegistryClient  # noqa: E402
from sienn_ray.jobs.core import RegistryCore  # noqa: E402
from sienn_ray.store import ReadStore, Store  # noqa: E402


def test_storage_errors_say_full_or_read_only_through_wrappers():
    full = storage_error(OSError(errno.ENOSPC, "No space left on device"))
    assert isinstance(full, InsufficientStorage) and (full.status_code, full.error_code) == (507,
                                                                                             "INSUFFICIENT_STORAGE")
    assert "No space left on device" in full.detail and "nothing was stored" in full.detail
    read_only = storage_error(OSError(errno.EROFS, "Read-only file system"))
    assert isinstance(read_only, StorageUnavailable) and read_only.status_code == 503
    assert read_only.headers["Retry-After"] == "30"
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as err:
            raise RuntimeError("writing the GGUF failed") from err
    except RuntimeError as wrapped:
        assert isinstance(storage_error(wrapped), InsufficientStorage)
    assert isinstance(storage_error(RuntimeError("I/O error: No space left on device (os error 28)")),
                      InsufficientStorage)
    assert storage_error(ValueError("not a number")) is None
    assert storage_error(OSError(errno.ECONNREFUSED, "Connection refused")) is None


def test_a_full_database_is_507_stores_nothing_and_takes_writes_again_once_there_is_room(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    cap = {"pages": None}

    @sa.event.listens_for(store.engine, "connect")
    def _page_limit(dbapi_conn, _record):  # SQLite's own "disk full": the file may not grow past the cap
        if cap["pages"]:
            dbapi_conn.execute(f"PRAGMA max_page_count={cap['pages']}")

    store.put_dataset(dataset_record("ds_" + "1" * 16))
    with store.engine.connect() as conn:
        cap["pages"] = conn.exec_driver_sql("PRAGMA page_count").scalar()
    store.engine.dispose()
    big = dataset_record("ds_" + "2" * 16, preview_chars=400_000)
    with pytest.raises(InsufficientStorage) as raised:
        store.put_dataset(big)
    assert raised.value.status_code == 507
    assert ReadStore(store.url).get_dataset(big.dataset_id) is None
    cap["pages"] = None  # space is back
    store.put_dataset(big)
    assert ReadStore(store.url).get_dataset(big.dataset_id).preview == big.preview


@pytest.fixture()
def read_only_db(tmp_path):
    """A database with one held job, and a switch that makes its file immutable (root only)."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    core = RegistryCore(Store(url), FakeCluster())
    core.put_dataset(dataset_record("ds_" + "3" * 16))
    held = core.adopt_job(job("ds_" + "3" * 16), "runner-1")
    core.store.engine.dispose()
    path = tmp_path / "db.sqlite"
    if not set_immutable(path, True):
        pytest.skip("needs chattr +i (root on a file system with inode flags)")
    yield url, held
    set_immutable(path, False)


def test_a_registry_restarted_on_a_read_only_database_answers_503_and_writes_again_after(read_only_db):
    url, held = read_only_db
    core = RegistryCore(Store(url), FakeCluster())  # the restart: must come up, not crash-loop on its recovery
    assert core.ping()["ok"] and core.get_job(held.job_id).lease is not None
    client = RegistryClient.in_process(core)
    with pytest.raises(StorageUnavailable) as raised:
        client.put_dataset(dataset_record("ds_" + "4" * 16)).result()
    assert raised.value.status_code == 503 and "cannot be written" in raised.value.detail
    assert ReadStore(url).get_dataset("ds_" + "4" * 16) is None
    set_immutable(Path(url.removeprefix("sqlite:///")), False)
    client.put_dataset(dataset_record("ds_" + "4" * 16)).result()  # the failed write dropped its connections
    assert ReadStore(url).get_dataset("ds_" + "4" * 16) is not None



def test_an_audit_batch_on_a_read_only_database_is_503_and_the_next_write_after_unlocking_works(read_only_db):
    """The audit writer fails like any write: a domain error, and no read-only connection left in the pool
    for the first write after the file is writable again."""
    from sienn_ray.schemas.auth import AuditEntry
    from sienn_ray.schemas.common import utcnow

    url, _held = read_only_db
    core = RegistryCore(Store(url), FakeCluster())
    entry = AuditEntry(at=utcnow(), key_name=None, tenant="default", method="POST", route="/api/x", path="/api/x",
                       target_id=None, status=200, client="127.0.0.1")
    with pytest.raises(StorageUnavailable):
        core.store.add_audit([entry])
    set_immutable(Path(url.removeprefix("sqlite:///")), False)
    core.put_dataset(dataset_record("ds_" + "5" * 16))  # first try
    assert ReadStore(url).get_dataset("ds_" + "5" * 16) is not None

@pytest.fixture()
def small_home(tmp_path, monkeypatch):
    """SIENN_HOME on a 4 MB tmpfs, with the upload route over an in-process registry on a database elsewhere."""
    from sienn_ray.api import deps
    from sienn_ray.api.app import create_app
    from sienn_ray.services.context import Services
    from sienn_ray.settings import reset_settings

    home = tmp_path / "home"
    if not mount_tmpfs(home, 4):
        pytest.skip("needs root to mount a tmpfs")
    monkeypatch.setenv("SIENN_HOME", str(home))
    reset_settings()
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    services = Services(registry=RegistryClient.in_process(RegistryCore(Store(url), FakeCluster())),
                        reader=ReadStore(url))
    monkeypatch.setattr(deps, "_services", services)  # what the ingress sets, undone below
    try:
        with TestClient(create_app(), base_url="http://127.0.0.1") as client:
            yield home, client, services
    finally:
        unmount(home)
        monkeypatch.undo()
        reset_settings()


def _rows(n: int) -> bytes:
    return "".join(f'{{"instruction": "Say {i}", "output": "{i} {"x" * 40}"}}\n' for i in range(n)).encode()


def test_an_upload_that_fills_the_disk_is_507_leaves_nothing_and_works_once_space_is_back(small_home):
    home, client, services = small_home
    filler = fill_disk(home, leave_bytes=256 * 1024)
    resp = client.post("/api/upload-dataset", files={"file": ("big.jsonl", _rows(20_000))})  # ~1.3 MB
    assert resp.status_code == 507, resp.text
    body = resp.json()
    assert body["error_code"] == "INSUFFICIENT_STORAGE" and "No space left" in body["detail"] and body["timestamp"]
    assert services.reader.list_datasets(None, 10, 0) == ([], 0)
    assert not list((home / "datasets").glob("*")) if (home / "datasets").exists() else True
    assert not list((home / "tmp").glob("*"))  # staging folders removed
    filler.unlink()
    resp = client.post("/api/upload-dataset", files={"file": ("big.jsonl", _rows(20_000))})
    assert resp.status_code == 200, resp.text
    assert (home / "datasets" / resp.json()["dataset_id"] / "data.jsonl").is_file()


def test_an_upload_whose_record_cannot_be_written_is_503_and_leaves_no_files(read_only_db, monkeypatch):
    import hashlib

    from sienn_ray import paths
    from sienn_ray.api import deps
    from sienn_ray.api.app import create_app
    from sienn_ray.data.storage import dataset_id_for
    from sienn_ray.services.context import Services

    url, _held = read_only_db
    services = Services(registry=RegistryClient.in_process(RegistryCore(Store(url), FakeCluster())),
                        reader=ReadStore(url))
    monkeypatch.setattr(deps, "_services", services)
    data = _rows(50) + b'{"instruction": "unique to this test", "output": "503"}\n'
    dataset_id = dataset_id_for(hashlib.sha256(data).hexdigest(), "default")
    with TestClient(create_app(), base_url="http://127.0.0.1") as client:
        resp = client.post("/api/upload-dataset", files={"file": ("ro.jsonl", data)})
        assert resp.status_code == 503, resp.text
        assert resp.json()["error_code"] == "STORAGE_UNAVAILABLE" and resp.headers["Retry-After"] == "30"
        assert not paths.dataset_dir(dataset_id).exists()  # no files without their record
        set_immutable(Path(url.removeprefix("sqlite:///")), False)
        resp = client.post("/api/upload-dataset", files={"file": ("ro.jsonl", data)})
        assert resp.status_code == 200 and resp.json()["dataset_id"] == dataset_id
        assert (paths.dataset_dir(dataset_id) / "data.jsonl").is_file()


def test_the_openapi_documents_507_on_every_operation_that_writes_the_store():
    from sienn_ray.api.app import create_app
    from sienn_ray.api.openapi import STORAGE_WRITES

    paths = create_app().openapi()["paths"]
    for method, path in STORAGE_WRITES:
        answer = paths[path][method]["responses"]["507"]
        assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ApiError"}
    assert "507" not in paths["/api/test-model"]["post"]["responses"]  # reads and inference write nothing
    assert "507" not in paths["/api/jobs"]["get"]["responses"]
