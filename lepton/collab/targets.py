"""Which kinds of object take part in working together, registered by the parts in `ready()`.

The core cannot import the parts (DESIGN.md), so each part tells it here how to reach its
objects: the URL of an object's page, the department that owns it, whether it may be shared
(datasets, models, shop problems) and whether it is discoverable by other departments.
Comments, watches and activity accept every registered kind; shares and access requests only
the shareable ones. Public references are "<app>.<model>" plus the object's id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from lepton import audit
from lepton.errors import Invalid, NotFound


@dataclass(frozen=True)
class Kind:
    model: type
    url: Callable[[object], str]
    # The object whose department owns it and whose audit events are its activity (a version's dataset).
    owner: Callable[[object], object]
    shareable: bool = False
    discoverable: Callable[[object], bool] = lambda obj: False
    # Narrows lookups (a dataset in the trash is out of reach).
    live: Callable[[object], object] = lambda qs: qs
    # The part's service that marks an object discoverable or not: (actor, obj, bool) -> obj.
    set_discoverable: Callable | None = None
    # The queryset filter of discoverable objects (for the discover list), e.g. {"discoverable": True}.
    discoverable_filter: dict | None = None

    @property
    def label(self) -> str:
        return audit.object_type(self.model)


_KINDS: dict[str, Kind] = {}


def register(
    model,
    *,
    url,
    owner=lambda obj: obj,
    shareable=False,
    discoverable=None,
    live=None,
    set_discoverable=None,
    discoverable_filter=None,
) -> None:
    kind = Kind(
        model=model,
        url=url,
        owner=owner,
        shareable=shareable,
        discoverable=discoverable or (lambda obj: False),
        live=live or (lambda qs: qs),
        set_discoverable=set_discoverable,
        discoverable_filter=discoverable_filter,
    )
    _KINDS[kind.label] = kind


def kinds(*, shareable: bool | None = None) -> list[Kind]:
    return [k for k in _KINDS.values() if shareable is None or k.shareable == shareable]


def kind_of(obj) -> Kind:
    return _KINDS[audit.object_type(obj)]


def is_registered(obj) -> bool:
    return audit.object_type(obj) in _KINDS


def label_of(obj) -> str:
    return audit.object_type(obj)


def content_type_of(obj) -> ContentType:
    return ContentType.objects.get_for_model(obj)


def find(label: str, object_id: str, *, shareable: bool = False):
    """The object named by a public reference (any visibility: callers apply the policy), or NotFound."""
    kind = _KINDS.get(str(label or ""))
    if kind is None or (shareable and not kind.shareable):
        choices = ", ".join(sorted(k.label for k in kinds(shareable=True if shareable else None)))
        raise Invalid(
            _("Unknown object type '%(type)s'.") % {"type": label},
            fields={"object_type": [_("Choose one of: %(choices)s.") % {"choices": choices}]},
        )
    try:
        return kind.live(kind.model._default_manager.all()).get(pk=object_id)
    except (kind.model.DoesNotExist, ValidationError, ValueError):
        raise NotFound() from None


def url_of(obj) -> str:
    try:
        return kind_of(obj).url(obj)
    except KeyError:
        return ""


def owner_of(obj):
    return kind_of(obj).owner(obj)


def department_id_of(obj) -> int:
    return owner_of(obj).department_id
