"""The status machine of an ML model (docs/lifecycle.md) as ONE table, :data:`TRANSITIONS`.

Each row says which statuses an action may start from, where it leads, the right it needs and
its guard in words. :func:`check` is the single gate every model-changing service call goes
through: it raises :class:`~lifecycle.errors.Conflict` (409) with the reason when the model's
status does not allow the action. The guards that need more than the status (every element
trained, the four-eyes rule, an imported model's fixed element set) are checked by the service
in :mod:`lifecycle.models`, which names them the same way.

Target kinds: a fixed status; ``DERIVED`` — ``TRAINED`` when every trainable element is trained
and the model has an element, else ``DRAFT`` (:func:`derived_status`); ``SAME`` — unchanged;
``COPY`` — a new model keeping the source's training state (``DRAFT``/``TRAINED``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Iterable

from lifecycle.errors import Conflict


class Status(str, Enum):
    DRAFT = "DRAFT"
    TRAINED = "TRAINED"
    READY_FOR_PUBLICATION = "READY_FOR_PUBLICATION"
    PUBLISHED = "PUBLISHED"
    NOT_ACTIVATED = "NOT_ACTIVATED"


class ElementStatus(str, Enum):
    NOT_TRAINED = "not_trained"
    TRAINED = "trained"


DERIVED = "derived"
SAME = "same"
COPY = "copy"
ANY: frozenset[Status] = frozenset(Status)
NEW: frozenset[Status] = frozenset()  # the action creates the model
EDITABLE = frozenset({Status.DRAFT, Status.TRAINED})
#: Nothing in a model with these statuses can change, nor any markup it uses.
FROZEN = frozenset({Status.READY_FOR_PUBLICATION, Status.PUBLISHED})


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[Status]
    target: Status | str
    right: str
    guard: str


_T = Transition
#: The status table, the one place it is defined (docs/lifecycle.md shows it, checked by a test).
TRANSITIONS: tuple[Transition, ...] = (
    _T("create", NEW, Status.DRAFT, "models.create", "the name is free"),
    _T("import", NEW, Status.NOT_ACTIVATED, "models.upload",
       "the archive is valid, its checksums match, it is within the size limit, the name is free"),
    _T("activate", frozenset({Status.NOT_ACTIVATED}), Status.TRAINED, "models.upload", "–"),
    _T("clone", ANY, COPY, "models.create", "the name is free; a clone of a frozen model is editable"),
    _T("template", ANY, COPY, "models.create", "the name is free; the copy is editable"),
    _T("edit", EDITABLE, DERIVED, "models.edit", "–"),
    _T("element.add", EDITABLE, DERIVED, "models.edit", "an imported-origin model cannot gain elements"),
    _T("element.change", EDITABLE, DERIVED, "models.edit",
       "the element's training status is reset to not_trained (a rule stays trained)"),
    _T("element.remove", EDITABLE, DERIVED, "models.edit", "an imported-origin model cannot lose elements"),
    _T("train", EDITABLE, SAME, "models.train",
       "a trainable element to train, with training data; TRAINED once every element is trained"),
    _T("train.done", EDITABLE, DERIVED, "models.train", "the element was not changed during its training"),
    _T("prepare", frozenset({Status.TRAINED}), Status.READY_FOR_PUBLICATION, "models.prepare",
       "every element is trained; freezes the model, its elements and the markups it uses"),
    _T("publish", frozenset({Status.READY_FOR_PUBLICATION}), Status.PUBLISHED, "models.publish",
       "with the four-eyes rule on: the publisher is not the preparer"),
    _T("infer", frozenset({Status.TRAINED, Status.PUBLISHED}), SAME, "models.infer", "–"),
    _T("delete", frozenset({Status.DRAFT, Status.TRAINED, Status.NOT_ACTIVATED}), SAME, "models.delete",
       "a frozen model is kept: it can only be cloned"),
)
BY_ACTION: dict[str, Transition] = {t.action: t for t in TRANSITIONS}


def transition(action: str) -> Transition:
    try:
        return BY_ACTION[action]
    except KeyError:
        raise ValueError(f"no action {action!r} in the status table") from None


def _reason(action: str, status: Status, allowed: Iterable[Status]) -> str:
    if status in FROZEN:
        return (f"the model is {status.value} and frozen: nothing in it can change "
                "(clone it to make a new iteration)")
    if status is Status.NOT_ACTIVATED:
        return "the model is NOT_ACTIVATED: activate the imported model first"
    names = " or ".join(s.value for s in sorted(allowed, key=lambda s: s.value))
    if action == "prepare" and status is Status.DRAFT:
        return "the model is DRAFT: every element must be trained before it can be prepared for publication"
    if action == "publish":
        return f"the model is {status.value}: only a READY_FOR_PUBLICATION model can be published (prepare it first)"
    return f"the model is {status.value}; {action} needs {names}"


def check(action: str, status: Status | str) -> Transition:
    """The row of ``action`` if ``status`` allows it; else :class:`Conflict` with the reason."""
    row = transition(action)
    current = Status(status)
    if row.sources is NEW or current not in row.sources:
        raise Conflict(f"cannot {action.replace('.', ' ')}: {_reason(action, current, row.sources)}",
                       field="status")
    return row


def derived_status(element_states: Iterable[tuple[str, ElementStatus | str]]) -> Status:
    """``TRAINED`` when the model has elements and all are trained, else ``DRAFT``.

    ``element_states`` gives (kind, training status) per element; a rule is trained by definition.
    """
    states = list(element_states)
    if not states:
        return Status.DRAFT
    return Status.TRAINED if all(ElementStatus(s) is ElementStatus.TRAINED for _k, s in states) else Status.DRAFT


def target_of(action: str, current: Status, derived: Status) -> Status:
    """Where ``action`` leads from ``current`` (given the derived status for DERIVED rows)."""
    row = transition(action)
    if isinstance(row.target, Status):
        return row.target
    if row.target == DERIVED:
        return derived
    if row.target == COPY:
        return derived if current is not Status.NOT_ACTIVATED else Status.NOT_ACTIVATED
    return current


def table_markdown() -> str:
    """The table for docs/lifecycle.md (a test checks the docs show it)."""
    lines = ["| action | from | to | right | guard |", "|---|---|---|---|---|"]
    for t in TRANSITIONS:
        src = "–" if t.sources is NEW else ("any" if t.sources == ANY else
                                              ", ".join(f"`{s.value}`" for s in sorted(t.sources, key=list(Status).index)))
        if isinstance(t.target, Status):
            dst = f"`{t.target.value}`"
        else:
            dst = {DERIVED: "`TRAINED` if every element is trained, else `DRAFT`", SAME: "unchanged",
                   COPY: "a copy keeping the source's training state"}[t.target]
        lines.append(f"| {t.action} | {src} | {dst} | `{t.right}` | {t.guard} |")
    return "\n".join(lines)
