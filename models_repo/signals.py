"""Signals of the model repository, for listeners that it should not import.

version_registered(sender=ModelVersion, version=…) — sent after the transaction that registered a
version from a training run committed (its continuous-learning promotion request, if any, is
committed too). The demo listens to put the first version of its models in production
(models_repo.demo.first_version_to_production).
"""

from django.dispatch import Signal

version_registered = Signal()
