"""The sweep after a runner is killed: a placement group no actor uses is removed, a used one kept."""

from __future__ import annotations



def test_an_unused_group_is_removed_and_a_used_one_kept(ray_session):
    ray = ray_session
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    from sienn_ray.jobs.placement_groups import remove_orphaned_groups

    orphan, used = placement_group([{"CPU": 0.01}]), placement_group([{"CPU": 0.01}])
    ray.get([orphan.ready(), used.ready()], timeout=60)

    @ray.remote(num_cpus=0.01)
    class Holder:
        def ping(self):
            return True

    holder = Holder.options(scheduling_strategy=PlacementGroupSchedulingStrategy(used)).remote()
    assert ray.get(holder.ping.remote(), timeout=60)
    try:
        removed = remove_orphaned_groups(look_every_s=0.5)
        assert orphan.id.hex() in removed and used.id.hex() not in removed
        table = ray.util.placement_group_table()
        assert table[orphan.id.hex()]["state"] == "REMOVED" and table[used.id.hex()]["state"] == "CREATED"
    finally:
        ray.kill(holder)
        ray.util.remove_placement_group(used)

