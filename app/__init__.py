"""The xrdid web service (HTTP only; the science lives in :mod:`xrdid`).

Run it with ``python -m app`` (settings from ``XRDID_*`` environment
variables) or ``uvicorn app.main:create_app --factory``.
"""
