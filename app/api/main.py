"""The API router: every resource's router, in one place."""

from fastapi import APIRouter

from app.api.routes import docs, health, identify, metrics, references

api_router = APIRouter()
api_router.include_router(identify.router)
api_router.include_router(references.router)
api_router.include_router(health.router)
api_router.include_router(metrics.router)
api_router.include_router(docs.router)
