"""Staging labels: which version holds AWSCURRENT, AWSPREVIOUS, AWSPENDING (pure).

A label sits on at most one version; the map label -> version id is the whole
truth, and every function here returns a new map.
"""

from __future__ import annotations

from strongroom.errors import InvalidParameterException, LimitExceededException

CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"
PENDING = "AWSPENDING"
MAX_LABELS_PER_VERSION = 20

Stages = dict[str, str]


def labels_of(stages: Stages, version_id: str) -> list[str]:
    return sorted(label for label, vid in stages.items() if vid == version_id)


def attach(stages: Stages, version_id: str, labels: list[str]) -> Stages:
    """Move `labels` onto `version_id`; moving AWSCURRENT leaves AWSPREVIOUS on the old holder."""
    new = dict(stages)
    old_current = stages.get(CURRENT)
    for label in labels:
        new[label] = version_id
    if CURRENT in labels and old_current is not None and old_current != version_id:
        new[PREVIOUS] = old_current
    _check_limit(new)
    return new


def move(stages: Stages, label: str, remove_from: str | None, move_to: str | None) -> Stages:
    """UpdateSecretVersionStage's rules."""
    holder = stages.get(label)
    if remove_from is not None and holder != remove_from:
        raise InvalidParameterException(
            f"The staging label {label} is not attached to the version {remove_from}, so you can't remove it."
        )
    if move_to is not None and holder is not None and holder != move_to and remove_from is None:
        raise InvalidParameterException(
            f"The parameter RemoveFromVersionId can't be empty. Staging label {label} is currently attached to "
            f"version {holder}, so you must explicitly reference that version in RemoveFromVersionId."
        )
    if move_to is None:
        if label == CURRENT:
            raise InvalidParameterException(
                "You can only move staging label AWSCURRENT to a different secret version. "
                "It can't be completely removed."
            )
        new = dict(stages)
        new.pop(label, None)
        return new
    return attach(stages, move_to, [label])


def deprecated(version_ids: list[str], stages: Stages) -> list[str]:
    """Versions that hold no label, in the order given (oldest first)."""
    labelled = set(stages.values())
    return [v for v in version_ids if v not in labelled]


def _check_limit(stages: Stages) -> None:
    counts: dict[str, int] = {}
    for vid in stages.values():
        counts[vid] = counts.get(vid, 0) + 1
        if counts[vid] > MAX_LABELS_PER_VERSION:
            raise LimitExceededException(
                f"A version can't have more than {MAX_LABELS_PER_VERSION} staging labels attached to it."
            )
