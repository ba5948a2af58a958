"""Lepton: the project (settings, urls, Celery app) and the core every part uses."""

from lepton.celery import app as celery_app

__all__ = ["celery_app"]
