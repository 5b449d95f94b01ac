"""Which demand groups the sites they may use cannot serve: a max-flow and its minimum cut.

``coverage.balance`` approves more sites while some groups are short; this module only
answers the question, on integer units, with no draws.
"""

from __future__ import annotations

import itertools
from collections import deque


def short_groups(demand: list[int], eligible: list[list[int]], capacity: list[int]) -> list[int]:
    """Demand groups that their eligible sites cannot serve together (empty when all fit).

    A max-flow (Edmonds-Karp, integer units) from a source through the groups (``demand``)
    and their ``eligible`` sites to a sink (``capacity``); when some demand is left over,
    the groups still reachable from the source in the residual graph are returned: their
    demand exceeds the capacity of all the sites they may use.

    >>> short_groups([5, 5], [[0], [0, 1]], [6, 6])
    []
    >>> short_groups([5, 5], [[0], [0]], [6, 6])
    [0, 1]
    """
    n_groups, n_sites = len(demand), len(capacity)
    source, sink = n_groups + n_sites, n_groups + n_sites + 1
    residual: list[dict[int, int]] = [{} for _ in range(n_groups + n_sites + 2)]

    def edge(u: int, v: int, cap: int) -> None:
        residual[u][v] = residual[u].get(v, 0) + cap
        residual[v].setdefault(u, 0)

    for i, (d, sites) in enumerate(zip(demand, eligible, strict=True)):
        edge(source, i, d)
        for j in sites:
            edge(i, n_groups + j, d)
    for j, cap in enumerate(capacity):
        edge(n_groups + j, sink, cap)
    # A greedy flow first (groups with the fewest sites first), then augmenting paths.
    for i in sorted(range(n_groups), key=lambda i: len(eligible[i])):
        for j in eligible[i]:
            push = min(residual[source][i], residual[n_groups + j][sink])
            if push > 0:
                for u, v in ((source, i), (i, n_groups + j), (n_groups + j, sink)):
                    residual[u][v] -= push
                    residual[v][u] += push
    while True:
        parent = {source: source}
        queue = deque([source])
        while queue and sink not in parent:
            u = queue.popleft()
            for v, cap in residual[u].items():
                if cap > 0 and v not in parent:
                    parent[v] = u
                    queue.append(v)
        if sink not in parent:
            break
        path = [sink]
        while path[-1] != source:
            path.append(parent[path[-1]])
        path.reverse()
        push = min(residual[u][v] for u, v in itertools.pairwise(path))
        for u, v in itertools.pairwise(path):
            residual[u][v] -= push
            residual[v][u] += push
    if all(residual[source][i] == 0 for i in range(n_groups)):
        return []
    return sorted(i for i in parent if i < n_groups)
