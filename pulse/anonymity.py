"""Anonymity of employee results: which groups may be shown so that no subtraction of shown numbers isolates
fewer than k people.

Pure: respondents and groups in, the set of groups that may be shown out. Every cut that is published anywhere
(company, each team with its sub-teams, each location, role family and tenure band; the same set serves the HR
page, a manager's page, EX beside CX and the API) is checked against every other, with group membership computed
from the answers' own attributes, so that a team which is all but one person of a location is seen to be inside
that location. Respondents with the same attributes are interchangeable, so they are kept as *profiles* (each
distinct combination of attributes, with how many answers have it) and a group is a bit set of profiles.

The rules, applied until nothing changes:

1. A group with fewer than k respondents is never shown.
2. Pairs: when one shown group contains another, they differ by nobody or by at least k people.
3. Covers: for a shown group W and each dimension, the shown groups of that dimension inside W (the largest
   ones, for nested teams) leave nobody or at least k people of W uncovered. Subtracting any subset of those
   parts leaves that remainder plus whole shown parts, each of at least k, so this rule bounds every
   subtraction within one dimension.
4. Mixed families: W minus any two or three disjoint shown groups inside it, taken from different dimensions,
   leaves nobody or at least k people.

When a rule fails, one group is hidden: an attribute cut before a team, a team before the company (the company
is hidden only when it is itself below k), the smaller before the larger. Hiding only ever makes the shown
set smaller, so the loop ends.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MIN_GROUP = 5  # the default k
MIN_GROUP_FLOOR = 3  # k can never be set below this
MIN_COMMENT_GROUP = 10
COMPANY = "company"


@dataclass(frozen=True)
class Group:
    """A cut of the respondents: its dimension ("company", "team", "location", …) and the profiles it holds."""

    dimension: str
    members: int  # bit i set: profile i belongs to the group


def size(members: int, weights: Sequence[int]) -> int:
    """How many respondents the profiles in a bit set hold."""
    total, index = 0, 0
    while members:
        if members & 1:
            total += weights[index]
        members >>= 1
        index += 1
    return total


def _rank(key: str, group: Group, n: int) -> tuple:
    """Which group to hide first: attribute cuts, then teams, then the company; smaller first."""
    order = {COMPANY: 2, "team": 1}.get(group.dimension, 0)
    return (order, n, key)


def _violation(groups: Mapping[str, Group], counts: Mapping[str, int], shown: set[str], k: int) -> list[str] | None:
    """The groups involved in the first broken rule (a whole and the parts subtracted from it), or None."""
    for whole in sorted(shown):
        bits, total = groups[whole].members, counts[whole]
        inside = [g for g in sorted(shown) if g != whole and groups[g].members & ~bits == 0]
        for part in inside:  # rule 2: pairs
            if 0 < total - counts[part] < k:
                return [whole, part]
        by_dimension: dict[str, list[str]] = {}
        for part in inside:
            by_dimension.setdefault(groups[part].dimension, []).append(part)
        for parts in by_dimension.values():  # rule 3: covers (the largest parts; nested teams count once)
            largest: dict[int, str] = {}
            for part in parts:
                bits_part = groups[part].members
                if not any(bits_part & ~groups[q].members == 0 and groups[q].members != bits_part for q in parts):
                    largest.setdefault(bits_part, part)  # a parent with all its people in one child: once
            if 0 < total - sum(counts[p] for p in largest.values()) < k:
                return [whole, *largest.values()]
        for width in (2, 3):  # rule 4: mixed families of disjoint groups from different dimensions
            for family in itertools.combinations(inside, width):
                if len({groups[p].dimension for p in family}) < 2:  # one dimension: the covers bound it
                    continue
                union, disjoint = 0, True
                for part in family:
                    if union & groups[part].members:
                        disjoint = False
                        break
                    union |= groups[part].members
                if disjoint and 0 < total - sum(counts[p] for p in family) < k:
                    return [whole, *family]
    return None


def visible(groups: Mapping[str, Group], weights: Sequence[int], k: int = MIN_GROUP) -> set[str]:
    """The keys of the groups whose numbers may be shown."""
    if k < MIN_GROUP_FLOOR:
        raise ValueError(f"k must be at least {MIN_GROUP_FLOOR}")
    counts = {key: size(group.members, weights) for key, group in groups.items()}
    shown = {key for key, n in counts.items() if n >= k}
    while (broken := _violation(groups, counts, shown, k)) is not None:
        whole, *parts = broken
        candidates = parts + ([whole] if groups[whole].dimension != COMPANY else [])
        shown.discard(min(candidates, key=lambda key: _rank(key, groups[key], counts[key])))
    return shown


def comments_visible(n: int, threshold: int = MIN_COMMENT_GROUP) -> bool:
    return n >= threshold
