"""Anonymity: nothing below k is shown, and no subtraction of shown numbers isolates fewer than k people."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulse.anonymity import Partition, visible


def remainders(counts, partitions, shown):
    """Every group an attacker can compute as a shown whole minus any set of its shown parts."""
    found = []
    for partition in partitions:
        if partition.whole not in shown:
            continue
        parts = [p for p in partition.parts if p in shown]
        for size in range(len(parts) + 1):
            for subset in itertools.combinations(parts, size):
                found.append(counts[partition.whole] - sum(counts[p] for p in subset))
    return found


def test_small_groups_are_hidden_and_their_complement_too():
    counts = {"company": 26, "team-a": 12, "team-b": 11, "team-c": 3}
    partitions = [Partition("company", ["team-a", "team-b", "team-c"])]
    shown = visible(counts, partitions, k=5)
    # team-c (3) is hidden; company - a - b would reveal it, so the next-smallest sibling goes too
    assert shown == {"company", "team-a"}
    assert all(r == 0 or r >= 5 for r in remainders(counts, partitions, shown))


def test_a_team_of_six_with_one_person_elsewhere():
    # the adversarial roster: by location, Milan has one person; Warsaw would reveal them by subtraction
    counts = {"company": 6, "loc:Warsaw": 5, "loc:Milan": 1}
    partitions = [Partition("company", ["loc:Warsaw", "loc:Milan"])]
    shown = visible(counts, partitions, k=5)
    assert "loc:Milan" not in shown and "loc:Warsaw" not in shown
    assert shown == {"company"}


def test_when_nothing_else_can_be_hidden_the_whole_goes():
    counts = {"parent": 7, "child": 5}  # two people sit in the parent team itself
    shown = visible(counts, [Partition("parent", ["child"])], k=5)
    assert shown == {"parent"}  # the child is hidden: parent - child would be 2 people
    assert visible({"parent": 5}, [], k=5) == {"parent"}


def test_k_cannot_go_below_three():
    with pytest.raises(ValueError, match="k must be at least 3"):
        visible({"a": 10}, [], k=2)


@st.composite
def trees(draw):
    """A random team tree with respondent counts (a parent holds its children and maybe some of its own)."""
    counts, partitions = {}, []

    def grow(name, depth):
        children = [] if depth >= 2 else [f"{name}.{i}" for i in range(draw(st.integers(0, 4)))]
        own = draw(st.integers(0, 8))
        total = own + sum(grow(child, depth + 1) for child in children)
        counts[name] = total
        if children:
            partitions.append(Partition(name, children))
        return total

    grow("company", 0)
    locations = draw(st.lists(st.integers(0, 9), min_size=1, max_size=4))
    scale = counts["company"]
    spread = [n for n in locations]
    if sum(spread) <= scale:  # a location partition of the same company
        names = [f"loc:{i}" for i in range(len(spread))]
        counts.update(zip(names, spread, strict=True))
        partitions.append(Partition("company", names))
    return counts, partitions


@settings(max_examples=300, deadline=None)
@given(tree=trees(), k=st.integers(3, 7))
def test_no_shown_number_or_difference_isolates_fewer_than_k(tree, k):
    counts, partitions = tree
    shown = visible(counts, partitions, k)
    assert all(counts[group] >= k for group in shown)
    for size in remainders(counts, partitions, shown):
        assert size == 0 or size >= k, (size, shown)
