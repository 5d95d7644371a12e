"""The web console, served by the manager under /ui/ (see docs/console.md): pages drawn on
the server from autoescaped templates, one small script for live updates, no CDN."""

from __future__ import annotations

from fastapi import APIRouter

from manager.ui import catalogue, live, pages

router = APIRouter()
# live first: its /ui/tasks/{id}/logs must not be taken for the task page's route.
router.include_router(live.router)
router.include_router(pages.router)
router.include_router(catalogue.router)
router.include_router(live.links)
