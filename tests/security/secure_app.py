"""An API process like a Serve replica, served by uvicorn: the same app, on the test session's cluster.

One Ray cluster has one Serve HTTP listener (the session app's, with auth off), so an app with other
security settings (auth required, short rate limits) needs a listener of its own. The app is plain
ASGI: here it runs under uvicorn with the registry, the store and the session's inference deployment,
exactly as ``ApiIngress`` wires them. Usage: ``python secure_app.py PORT`` with ``RAY_ADDRESS`` set.
"""

from __future__ import annotations

import sys


def main(port: int) -> None:
    import ray
    import uvicorn
    from ray import serve

    from sienn_ray.settings import apply_ray_env, get_settings

    apply_ray_env()
    ray.init(namespace=get_settings().ray_namespace, log_to_driver=False, configure_logging=False)
    from sienn_ray.api.app import create_app
    from sienn_ray.api.deps import set_services
    from sienn_ray.services.connect import connect_services

    set_services(connect_services(inference=serve.get_deployment_handle("InferenceDeployment", app_name="sienn")))
    uvicorn.run(create_app(), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(int(sys.argv[1]))
