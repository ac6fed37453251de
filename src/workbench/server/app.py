"""The HTTP front's app: Watson Visual Recognition v3 paths over the Workbench engine (FastAPI).

`create_app` puts the pieces together: the routes (classify_routes, classifier_routes,
example_routes), the Watson JSON error handler (errors), the middleware that admits a request
(admission, connection_limits) and the OpenAPI document with Watson's auth schemes. It parses
nothing and decides nothing itself; every decision about classifiers, examples and scores is the
engine's. Running it with uvicorn is runner.py's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from ..core.errors import WorkbenchError
from ..service.workbench import Workbench
from . import classifier_routes, classify_routes, example_routes
from .admission import BodyLimit, HostCheck
from .auth import LEGACY_KEY_PARAM, redact_access_log
from .connection_limits import BodyDeadline
from .errors import UnexpectedErrors, error_handler
from .front import Front
from .keys import KeyRing
from .process_memory import MemoryTrimmer
from .settings import ServerSettings

V3_ROUTERS = (classify_routes.router, classifier_routes.router, example_routes.router)  # in /openapi.json's order


def watson_openapi(app: FastAPI) -> dict:
    """The OpenAPI document: our routes, Watson's auth schemes, 400 (not FastAPI's 422) for bad parameters."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for path in schema["paths"].values():
            for operation in path.values():
                operation["responses"].pop("422", None)
        components = schema.setdefault("components", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.get("schemas", {}).pop(unused, None)
        components["securitySchemes"] = {
            "basicAuth": {"type": "http", "scheme": "basic", "description": "username apikey, password the key"},
            "bearerAuth": {"type": "http", "scheme": "bearer", "description": "the API key as the token"},
            "legacyApiKey": {
                "type": "apiKey",
                "in": "query",
                "name": LEGACY_KEY_PARAM,
                "description": "the API key in the query string, as Watson took it before IAM",
            },
        }
        schema["security"] = [{"basicAuth": []}, {"bearerAuth": []}, {"legacyApiKey": []}]
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(workbench: Workbench, *, keys: KeyRing | None = None, settings: ServerSettings | None = None) -> FastAPI:
    """The Watson v3 app over `workbench`; API keys from `keys` (default: env and `{home}/api_keys.json`)."""
    settings = settings or ServerSettings()
    if settings.auth and keys is None:
        keys = KeyRing(workbench.home)
    if keys is not None:
        keys.check()  # a corrupt key file stops the server here, not with a 500 on every request
    front = Front(workbench, keys, settings)
    redact_access_log()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(lambda: workbench.store)  # opens the store and resumes unfinished trainings
        trimmer = MemoryTrimmer().start()  # freed memory goes back to the system: RSS follows the load down
        yield
        trimmer.stop()
        front.url_threads.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="workbench: Watson Visual Recognition v3",
        version="3.0",
        description="IBM Watson Visual Recognition v3 custom classifiers, served locally by workbench.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.front = front
    for router in V3_ROUTERS:
        app.include_router(router)
    handle = error_handler([route for router in V3_ROUTERS for route in router.routes])
    for exc_type in (WorkbenchError, HTTPException, RequestValidationError, ClientDisconnect):
        app.add_exception_handler(exc_type, handle)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(HostCheck, settings=settings)  # before the body is read
    app.add_middleware(UnexpectedErrors)  # wraps BodyLimit too
    app.add_middleware(  # outermost: it adds `Connection: close` to whatever answers a body it cut off
        BodyDeadline,
        min_bytes_per_s=settings.body_min_bytes_per_s,
        grace_s=settings.body_rate_grace_s,
        idle_s=settings.body_idle_s,
    )
    app.openapi = lambda: watson_openapi(app)  # type: ignore[method-assign]  # FastAPI's documented override
    return app
