"""Staging labels: attach (PutSecretValue) and move (UpdateSecretVersionStage) rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.errors import InvalidParameterException, LimitExceededException
from strongroom.services.secretsmanager import staging
from strongroom.services.secretsmanager.staging import CURRENT, PENDING, PREVIOUS

V1, V2, V3 = "v1" * 16, "v2" * 16, "v3" * 16


@pytest.mark.parametrize(
    ("before", "version", "labels", "after"),
    [
        # First value: AWSCURRENT, nothing to demote.
        ({}, V1, [CURRENT], {CURRENT: V1}),
        # A new current value demotes the old one to AWSPREVIOUS.
        ({CURRENT: V1}, V2, [CURRENT], {CURRENT: V2, PREVIOUS: V1}),
        # AWSPREVIOUS leaves the version that held it.
        ({CURRENT: V2, PREVIOUS: V1}, V3, [CURRENT], {CURRENT: V3, PREVIOUS: V2}),
        # Re-attaching AWSCURRENT to its holder changes nothing.
        ({CURRENT: V1, PREVIOUS: V2}, V1, [CURRENT], {CURRENT: V1, PREVIOUS: V2}),
        # A custom label does not touch AWSCURRENT.
        ({CURRENT: V1}, V2, ["MINE"], {CURRENT: V1, "MINE": V2}),
        # A label moves away from its old holder.
        ({CURRENT: V1, "MINE": V1}, V2, ["MINE"], {CURRENT: V1, "MINE": V2}),
        # AWSPENDING and AWSCURRENT together (the end of a rotation).
        ({CURRENT: V1, PENDING: V2}, V2, [CURRENT], {CURRENT: V2, PENDING: V2, PREVIOUS: V1}),
    ],
)
def test_attach(before, version, labels, after):
    assert staging.attach(before, version, labels) == after


def test_attach_does_not_modify_its_input():
    before = {CURRENT: V1}
    staging.attach(before, V2, [CURRENT])
    assert before == {CURRENT: V1}


def test_attach_refuses_a_21st_label_on_one_version():
    stages = {f"L{i}": V1 for i in range(20)}
    with pytest.raises(LimitExceededException):
        staging.attach(stages, V1, ["ONE-TOO-MANY"])
    # Twenty is allowed.
    assert len(staging.labels_of(staging.attach({}, V1, [f"L{i}" for i in range(20)]), V1)) == 20


@pytest.mark.parametrize(
    ("before", "label", "remove_from", "move_to", "after"),
    [
        # Move AWSCURRENT explicitly: the old holder becomes AWSPREVIOUS.
        ({CURRENT: V1}, CURRENT, V1, V2, {CURRENT: V2, PREVIOUS: V1}),
        # Roll back: AWSCURRENT to the AWSPREVIOUS version swaps the two.
        ({CURRENT: V2, PREVIOUS: V1}, CURRENT, V2, V1, {CURRENT: V1, PREVIOUS: V2}),
        # Attach a label nobody holds: no RemoveFromVersionId needed.
        ({CURRENT: V1}, "MINE", None, V2, {CURRENT: V1, "MINE": V2}),
        # Remove a custom label outright.
        ({CURRENT: V1, "MINE": V2}, "MINE", V2, None, {CURRENT: V1}),
        # Move a custom label.
        ({CURRENT: V1, "MINE": V2}, "MINE", V2, V1, {CURRENT: V1, "MINE": V1}),
        # Moving a label onto the version that already holds it is a no-op.
        ({CURRENT: V1, "MINE": V2}, "MINE", None, V2, {CURRENT: V1, "MINE": V2}),
        ({CURRENT: V1}, CURRENT, V1, V1, {CURRENT: V1}),
        # Clearing AWSPENDING after a rotation.
        ({CURRENT: V2, PENDING: V2, PREVIOUS: V1}, PENDING, V2, None, {CURRENT: V2, PREVIOUS: V1}),
    ],
)
def test_move(before, label, remove_from, move_to, after):
    assert staging.move(before, label, remove_from, move_to) == after


@pytest.mark.parametrize(
    ("before", "label", "remove_from", "move_to", "error"),
    [
        # AWSCURRENT can only move, never be removed.
        ({CURRENT: V1}, CURRENT, V1, None, "can't be completely removed"),
        # The label is held elsewhere, and the caller did not say where from.
        ({CURRENT: V1}, CURRENT, None, V2, "RemoveFromVersionId can't be empty"),
        ({CURRENT: V1, "MINE": V1}, "MINE", None, V2, "RemoveFromVersionId can't be empty"),
        # RemoveFromVersionId must name the current holder.
        ({CURRENT: V1}, CURRENT, V2, V3, "is not attached to the version"),
        ({CURRENT: V1}, "MINE", V1, None, "is not attached to the version"),
    ],
)
def test_move_refusals(before, label, remove_from, move_to, error):
    with pytest.raises(InvalidParameterException) as exc:
        staging.move(before, label, remove_from, move_to)
    assert error in exc.value.message


def test_labels_of_and_deprecated():
    stages = {CURRENT: V2, PREVIOUS: V1, "B": V2, "A": V2}
    assert staging.labels_of(stages, V2) == ["A", CURRENT, "B"]  # sorted
    assert staging.labels_of(stages, V3) == []
    assert staging.deprecated([V1, V2, V3], stages) == [V3]


versions = st.sampled_from([V1, V2, V3])
labels = st.sampled_from([CURRENT, PREVIOUS, PENDING, "A", "B"])
maps = st.dictionaries(labels, versions)


@given(maps, versions, st.lists(labels, min_size=1, max_size=3))
def test_attach_puts_every_label_on_the_version_and_keeps_one_holder_per_label(before, version, new):
    after = staging.attach(before, version, new)
    # Moving AWSCURRENT hands AWSPREVIOUS to the old holder even when AWSPREVIOUS was also asked for.
    handed_over = CURRENT in new and before.get(CURRENT) not in (None, version)
    assert all(after[label] == version for label in new if not (label == PREVIOUS and handed_over))
    # Labels not named (other than the AWSPREVIOUS hand-over) stay where they were.
    for label, holder in before.items():
        if label not in new and not (label == PREVIOUS and CURRENT in new):
            assert after[label] == holder


@given(maps, versions, versions)
def test_moving_awscurrent_leaves_awsprevious_on_the_old_holder(before, old, new):
    before = {**before, CURRENT: old}
    after = staging.move(before, CURRENT, old, new)
    assert after[CURRENT] == new
    if old != new:
        assert after[PREVIOUS] == old
