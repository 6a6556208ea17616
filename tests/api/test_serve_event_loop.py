"""The Serve replicas of the session cluster run user code as settings.WORKER_ENV says (real Ray + Serve).

A probe deployment beside the real app reports the loop its request runs on: the stock asyncio loop
(uvloop starves some connections of a burst, see settings.py), on the replica's own loop thread (Ray's
"AsyncIO Thread"), not on Serve's second user-code loop in a thread of its own.
"""

from __future__ import annotations

import asyncio
import threading

from ray import serve


@serve.deployment(ray_actor_options={"num_cpus": 0})
class LoopProbe:
    async def __call__(self) -> dict:
        return {"loop": type(asyncio.get_running_loop()).__module__, "thread": threading.current_thread().name}


def test_replicas_run_our_code_on_the_stock_asyncio_loop_of_their_own_thread(api_url):
    handle = serve.run(LoopProbe.bind(), name="loop-probe", route_prefix=None)
    try:
        seen = handle.remote().result(timeout_s=120)
    finally:
        serve.delete("loop-probe")
    assert seen["loop"].startswith("asyncio."), seen  # uvloop's loops live in the "uvloop" module
    assert seen["thread"].startswith("AsyncIO Thread"), seen
