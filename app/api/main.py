"""The API's routers, in one place."""

from fastapi import APIRouter

from app.api.routes import audit, docs, health, identify, jobs, metrics, references

api_router = APIRouter()
api_router.include_router(identify.router)
api_router.include_router(references.router)
api_router.include_router(jobs.router)
api_router.include_router(audit.router)
api_router.include_router(health.router)
api_router.include_router(metrics.router)
api_router.include_router(docs.router)

# A worker-only process (XRDID_ROLE=worker) answers only these.
worker_router = APIRouter()
worker_router.include_router(health.router)
worker_router.include_router(metrics.router)
