"""The web console: static files shipped in ``sienn_ray/console`` and served by the API itself.

``/`` is the page, ``/console/...`` its scripts, styles and vendored libraries. Every
console response carries a Content-Security-Policy that allows only the API's own
origin, so the page can load nothing and send nothing anywhere else. ``/docs`` (Swagger
UI) is served from the same vendored files instead of FastAPI's default CDN.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles

CONSOLE_PACKAGE = ("sienn_ray", "console")
SWAGGER_UI = "/console/vendor/swagger-ui-dist"

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "base-uri 'none'",
    "object-src 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
])

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Assets are not content-hashed: revalidate (ETag / Last-Modified) so an upgrade shows at once.
    "Cache-Control": "no-cache",
}


class ConsoleFiles(StaticFiles):
    """StaticFiles over the console's package data, with the security headers on every answer."""

    def __init__(self) -> None:
        super().__init__(packages=[CONSOLE_PACKAGE])

    def __reduce__(self):
        # Serve runs a pickled copy of the app; rebuild here so the package folder is looked up
        # where the replica runs, not where the app object was created.
        return (ConsoleFiles, ())

    async def get_response(self, path: str, scope):
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def install_console(app: FastAPI, docs_url: str = "/docs") -> None:
    """Serve the console page at ``/``, its assets under ``/console`` and Swagger UI at ``docs_url``
    (create the app with ``docs_url=None`` so FastAPI does not add its CDN-loading page)."""
    files = ConsoleFiles()

    async def console_page(request: Request):
        return await files.get_response("index.html", request.scope)

    async def swagger_ui():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title=f"{app.title} API",
            swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js", swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
            swagger_favicon_url="/console/favicon.svg",
            # Swagger UI would otherwise send the schema to validator.swagger.io for a badge.
            swagger_ui_parameters={"validatorUrl": None},
        )

    app.add_api_route("/", console_page, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route(docs_url, swagger_ui, methods=["GET"], include_in_schema=False)
    app.mount("/console", files, name="console")
