"""The team tree: a parent team includes its children."""

from __future__ import annotations

from pulse.models import Team


async def subtree_ids(team_id: int) -> list[int]:
    """The team and every team below it."""
    parents = dict(await Team.all().values_list("id", "parent_id"))
    found, frontier = {team_id}, [team_id]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in found:
                found.add(child)
                frontier.append(child)
    return sorted(found)
