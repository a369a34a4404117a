"""Anonymity: nothing below k is shown, and no subtraction of shown groups, across every dimension, isolates
fewer than k people."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulse.anonymity import COMPANY, Group, size, visible

TREE = {"care": None, "warsaw": "care", "milan": "care", "sales": None}


def build(people: list[tuple[str, str | None, str | None]]) -> tuple[dict[str, Group], list[int]]:
    """Groups as the engagement results build them: company, teams with their parents, locations, roles."""
    profiles: dict[tuple, int] = {}
    weights: list[int] = []
    groups: dict[str, Group] = {COMPANY: Group(COMPANY, 0)}
    for person in people:
        if person not in profiles:
            profiles[person] = len(weights)
            weights.append(0)
        index = profiles[person]
        weights[index] += 1
        team, location, role = person
        keys = [COMPANY]
        while team is not None:
            keys.append(f"team:{team}")
            team = TREE[team]
        keys += [f"location:{location}"] if location else []
        keys += [f"role:{role}"] if role else []
        for key in keys:
            old = groups.get(key, Group(key.split(":")[0], 0))
            groups[key] = Group(old.dimension, old.members | (1 << index))
    return groups, weights


def attacks(groups: dict[str, Group], weights: list[int], shown: set[str]) -> list[tuple[str, tuple, int]]:
    """Every subtraction: each shown group minus every family of disjoint shown groups inside it (exhaustive)."""
    found = []
    for whole in shown:
        bits, total = groups[whole].members, size(groups[whole].members, weights)
        inside = [g for g in shown if g != whole and groups[g].members & ~bits == 0]

        def walk(start: int, union: int, taken: tuple, whole=whole, total=total, inside=inside) -> None:
            if taken:
                found.append((whole, taken, total - size(union, weights)))
            for i in range(start, len(inside)):
                members = groups[inside[i]].members
                if union & members == 0:
                    walk(i + 1, union | members, (*taken, inside[i]))

        walk(0, 0, ())
    return found


def test_a_team_that_is_all_but_one_person_of_a_location_cannot_be_subtracted_from_it():
    # Warsaw (6) minus support-warsaw (5) would be the one salesperson who sits in Warsaw
    people = [("warsaw", "Warsaw", "Support")] * 5 + [("sales", "Warsaw", "Sales")] + [("sales", "Rome", "Sales")] * 9
    groups, weights = build(people)
    shown = visible(groups, weights, k=5)
    assert not ({"location:Warsaw", "team:warsaw"} <= shown)
    assert "team:warsaw" in shown  # the attribute cut goes first: the manager keeps the team's numbers
    for whole, family, remainder in attacks(groups, weights, shown):
        assert remainder == 0 or remainder >= 5, (whole, family, remainder)


def test_a_role_family_of_six_inside_a_team_of_eleven():
    people = [("warsaw", "Warsaw", "Lead")] * 6 + [("warsaw", "Warsaw", "Support")] * 5 + [("sales", "Rome", None)] * 7
    groups, weights = build(people)
    shown = visible(groups, weights, k=5)
    assert {"role:Lead", "role:Support", "team:warsaw"} <= shown  # 11 - 6 = 5: safe at k = 5
    shown = visible(groups, weights, k=6)
    assert not ({"role:Lead", "team:warsaw"} <= shown)  # 11 - 6 = 5 < 6


def test_small_groups_are_hidden_and_their_complement_too():
    people = [("warsaw", None, None)] * 12 + [("milan", None, None)] * 11 + [("sales", None, None)] * 3
    groups, weights = build(people)
    shown = visible(groups, weights, k=5)
    # sales (3) is hidden; company - care would reveal it, so care goes, and its parts must cover company too
    assert "team:sales" not in shown and COMPANY in shown
    for whole, family, remainder in attacks(groups, weights, shown):
        assert remainder == 0 or remainder >= 5, (whole, family, remainder)


def test_the_company_is_hidden_only_when_it_is_below_k():
    groups, weights = build([("warsaw", "Warsaw", None)] * 4)
    assert visible(groups, weights, k=5) == set()
    groups, weights = build([("warsaw", "Warsaw", None)] * 7)
    assert COMPANY in visible(groups, weights, k=5)


def test_k_has_a_floor():
    with pytest.raises(ValueError, match="at least 3"):
        visible({COMPANY: Group(COMPANY, 1)}, [9], k=2)


PERSON = st.tuples(
    st.sampled_from(["care", "warsaw", "milan", "sales"]),
    st.sampled_from(["Warsaw", "Milan", "Rome", None]),
    st.sampled_from(["Support", "Sales", None]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(PERSON, min_size=1, max_size=40), st.integers(min_value=3, max_value=6))
def test_no_subtraction_of_shown_groups_isolates_fewer_than_k(people, k):
    groups, weights = build(people)
    shown = visible(groups, weights, k)
    for key in shown:
        assert size(groups[key].members, weights) >= k
    for whole, family, remainder in attacks(groups, weights, shown):
        assert remainder == 0 or remainder >= k, (whole, family, remainder)
