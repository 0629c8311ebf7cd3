"""The ASGI app: probes, metrics, CRUD routes, and per-route request metrics."""
import asyncio
import logging
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .db import Database, Unavailable
from .metrics import Metrics
from .routes import router

log = logging.getLogger("healthcare_api")


def create_app(settings) -> FastAPI:
    metrics = Metrics()
    db = Database(settings, metrics)
    app = FastAPI(title="healthcare-api", version="1.0.0")
    app.state.db = db
    app.state.metrics = metrics
    tasks = []

    @app.on_event("startup")
    async def _start():
        await db.open()
        tasks.append(asyncio.create_task(db.ensure_schema_forever(log)))

    @app.on_event("shutdown")
    async def _stop():
        for t in tasks:
            t.cancel()
        await db.close()

    @app.middleware("http")
    async def _measure(request: Request, call_next):
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            metrics.requests.labels(request.method, path, str(status)).inc()
            metrics.latency.labels(request.method, path).observe(time.perf_counter() - start)

    @app.exception_handler(Unavailable)
    async def _unavailable(_request: Request, exc: Unavailable):
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})

    @app.get("/healthz", include_in_schema=False)
    async def healthz():
        # Liveness only: a database outage must not make the kubelet restart every replica.
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz():
        if await db.ping():
            return {"status": "ready", "database": "ok"}
        return JSONResponse({"status": "not ready", "database": "unreachable or schema missing"},
                            status_code=503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint():
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(router)
    return app
