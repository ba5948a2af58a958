"""Kinds of model that another part trains and applies (a scheduling policy), registered at start-up.

The model repository keeps their versions like any other — artifact in the lake (content-addressed,
checksum-verified on read), metrics, aliases, promotion — but neither trains nor serves them:
- the prediction API refuses their versions with 409 `not_served` and `not_served`'s reason;
- tabular training and file uploads refuse a model of their task (its versions come from its own training);
- the model page links to `train_url` instead of the tabular training form, and shows
  `version_template` under each version;
- a re-run asks `rerun`, and the promotion gate asks `score` to measure a version on another's
  held-out set.
The owning part registers here in its AppConfig.ready(), so this part imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ExternalKind:
    flavor: str  # ModelVersion.flavor of its versions
    task: str  # RegisteredModel.task of its models
    not_served: str  # why the prediction API refuses it (a lazy translation)
    train_url: str  # URL name of the page that trains it (takes ?model=<id>)
    version_template: str  # shown under each version on the model page (context: `version`)
    rerun: Callable  # (actor=, run=) -> TrainingRun: the same training again
    score: Callable  # (version, reference, metric) -> float | None: `version` on `reference`'s held-out set


_KINDS: dict[str, ExternalKind] = {}


def register(kind: ExternalKind) -> None:
    _KINDS[kind.flavor] = kind


def by_flavor(flavor: str) -> ExternalKind | None:
    return _KINDS.get(flavor)


def by_task(task: str) -> ExternalKind | None:
    return next((kind for kind in _KINDS.values() if kind.task == task), None)
