"""Signals other parts listen to, so that the data lake never imports them.

version_published(sender=DatasetVersion, version=…) — sent after the transaction that published
a version committed (the model repository re-trains on it: continuous learning).
"""

from django.dispatch import Signal

version_published = Signal()
