"""Ray glue: an export runs as a one-CPU Ray task on the cluster, never in the HTTP replica.

The task reports through the registry (the only writer of records): its latest
progress message every few seconds while it works (also through long steps that
report nothing, such as loading a big model, so the API can tell a live export
from a dead one), then ``completed`` with the files or ``failed`` with the
reason. Nobody waits on its result.
"""

from __future__ import annotations

import logging
import threading

import ray

from ..errors import storage_error
from ..jobs.client import RegistryClient
from ..schemas.common import utcnow
from .run import ExportSpec, run_export

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0


@ray.remote(num_cpus=1, max_retries=1)
def _export(task: dict, namespace: str) -> None:
    run_and_record(ExportSpec.model_validate(task), RegistryClient.for_actor(namespace))


def launch_export(task: ExportSpec, namespace: str) -> None:
    """Start the export on the cluster and return at once."""
    _export.options(name=f"export-{task.export_id}").remote(task.model_dump(mode="json"), namespace)


def run_and_record(task: ExportSpec, registry: RegistryClient) -> None:
    """Run one export and record its outcome through ``registry`` (a ``RegistryClient``)."""
    latest = ["Export started"]
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            registry.update_export(task.export_id, {"message": latest[0]}).result()

    registry.update_export(task.export_id, {"message": latest[0]}).result()
    beating = threading.Thread(target=heartbeat, name=f"heartbeat-{task.export_id}", daemon=True)
    beating.start()
    try:
        files = run_export(task, lambda message: latest.__setitem__(0, message))
    except Exception as err:  # noqa: BLE001 - any failure is the export's outcome, recorded for the user
        log.exception("export %s failed", task.export_id)
        storage = storage_error(err)  # a full disk says so (and that a retry works once space is back)
        outcome = {"status": "failed", "message": f"Export failed: {storage.detail if storage else err}",
                   "error_code": storage.error_code if storage else "EXPORT_FAILED"}
    else:
        outcome = {"status": "completed", "message": "Export completed", "files": [f.model_dump() for f in files],
                   "total_size_bytes": sum(f.size_bytes for f in files)}
    finally:
        stop.set()  # no late heartbeat may land after the outcome
        beating.join()
    registry.update_export(task.export_id, outcome | {"completed_at": utcnow()}).result()
