"""Ray glue: give back the resources of a Train run whose runner was killed while its workers started.

Ray Train hands a run's placement group to its cleaner actor only once the worker group is up
(``PlacementGroupCleanerCallback.after_worker_group_start``). A runner killed before that (a job
cancelled or paused while launching, a lost lease) takes the Train controller with it, and the group
keeps its CPUs and GPUs for as long as the cluster lives: in the test session two such groups left one
CPU free, and every later job waited in the queue. Ray has no owner-death cleanup for it, so after
each kill the registry removes the groups that no live actor uses, twice seen a few seconds apart
(a run that just made its group creates its workers in it at once).
"""

from __future__ import annotations

import logging
import threading
import time

import ray

log = logging.getLogger(__name__)
# Before each look: far longer than a Train controller takes from its group being ready to its
# worker actors existing (pending actors count as users).
SECOND_LOOK_S = 10.0


def _unused_groups() -> set[str]:
    """Created placement groups that no actor (alive or still being created) is placed in."""
    from ray.util.state import list_actors

    address = ray.get_runtime_context().gcs_address
    users = {a.placement_group_id for a in list_actors(address=address, filters=[("state", "!=", "DEAD")],
                                                       limit=10_000, detail=True) if a.placement_group_id}
    return {group_id for group_id, group in ray.util.placement_group_table().items()
            if group["state"] == "CREATED" and group_id not in users}


def remove_orphaned_groups(look_every_s: float = SECOND_LOOK_S) -> list[str]:
    """Remove the groups unused at both looks; returns their ids. The first look waits as long as the
    second: the killed runner's controller and workers take a moment to die and stop using the group."""
    from ray._raylet import PlacementGroupID
    from ray.util.placement_group import PlacementGroup, remove_placement_group

    time.sleep(look_every_s)
    first = _unused_groups()
    if not first:
        return []
    time.sleep(look_every_s)
    orphaned = sorted(first & _unused_groups())
    for group_id in orphaned:
        remove_placement_group(PlacementGroup(PlacementGroupID.from_hex(group_id)))
        log.warning("removed placement group %s: its Train run's runner was stopped while its workers started",
                    group_id)
    return orphaned


def sweep_after_kill() -> None:
    """Run ``remove_orphaned_groups`` off the caller's thread (the registry answers meanwhile)."""
    def sweep() -> None:
        try:
            remove_orphaned_groups()
        except Exception:  # noqa: BLE001 - a failed sweep must never hurt the registry
            log.exception("placement group sweep failed")

    threading.Thread(target=sweep, name="placement-group-sweep", daemon=True).start()
