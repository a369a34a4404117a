"""Anonymity of employee results: which group numbers may be shown so that no subtraction reveals fewer than k.

Pure: counts in, a set of shown groups out. Two rules:

1. A group with fewer than k respondents is never shown.
2. Complementary suppression: for every partition of a shown group into parts (a team into its sub-teams, the
   company into locations, …), the parts that are hidden must together hold either nobody or at least k people;
   otherwise `whole - shown parts` would reveal a group smaller than k. When they do not, the next-smallest shown
   part is hidden too, until they do (or the whole itself is hidden, when nothing else is left to hide).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

MIN_GROUP = 5  # the default k
MIN_GROUP_FLOOR = 3  # k can never be set below this
MIN_COMMENT_GROUP = 10


@dataclass(frozen=True)
class Partition:
    """A whole (a group key) and the parts it splits into; each part's respondents are a subset of the whole's."""

    whole: Hashable
    parts: Sequence[Hashable]


def visible(counts: Mapping[Hashable, int], partitions: Sequence[Partition], k: int = MIN_GROUP) -> set[Hashable]:
    """The groups whose numbers may be shown, given each group's respondent count."""
    if k < MIN_GROUP_FLOOR:
        raise ValueError(f"k must be at least {MIN_GROUP_FLOOR}")
    shown = {group for group, n in counts.items() if n >= k}
    changed = True
    while changed:  # hiding one part can break another partition's balance: repeat until stable
        changed = False
        for partition in partitions:
            if partition.whole not in shown:
                continue
            parts = [p for p in partition.parts if p in counts]
            hidden = sum(counts[p] for p in parts if p not in shown)
            missing = counts[partition.whole] - sum(counts[p] for p in parts)  # people in no listed part
            hidden += max(missing, 0)
            candidates = sorted((counts[p], str(p), p) for p in parts if p in shown)
            while 0 < hidden < k:
                if not candidates:
                    shown.discard(partition.whole)  # nothing left to hide but the whole itself
                    changed = True
                    break
                n, _, part = candidates.pop(0)
                shown.discard(part)
                hidden += n
                changed = True
    return shown


def derived_groups(counts: Mapping[Hashable, int], partitions: Sequence[Partition], shown: set[Hashable]) -> list[int]:
    """What an attacker can compute: for each shown whole, the sizes of `whole - any set of shown parts`."""
    sizes = []
    for partition in partitions:
        if partition.whole not in shown:
            continue
        visible_parts = [counts[p] for p in partition.parts if p in shown and p in counts]
        total = counts[partition.whole]
        sizes.append(total - sum(visible_parts))  # everything shown subtracted: the hidden remainder
        for n in visible_parts:
            sizes.append(total - n)  # one part subtracted
    return sizes


def comments_visible(n: int, threshold: int = MIN_COMMENT_GROUP) -> bool:
    return n >= threshold
