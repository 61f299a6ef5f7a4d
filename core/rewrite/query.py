"""Rewrite queries: which rewrites a compile mode runs, chosen by tags as in Theano. A rewrite
runs when it has one of the included tags, every required tag and no excluded tag. This module
is also the one place the tag vocabulary is checked."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

# Tags that are neither a rewrite's name nor given at registration.
CORE_TAGS = {
    "fast_run": "the rewrites of mode FAST_RUN",
    "fast_compile": "the rewrites of mode FAST_COMPILE",
    "fusion": "lowering fuses elementwise nodes into shared loops (on unless excluded)",
}


@dataclass(frozen=True)
class RewriteQuery:
    """Tags to include, exclude and require. `including`/`excluding`/`requiring` return new
    queries and refuse tags nobody registered (a misspelt tag would silently select nothing)."""

    include: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()
    require: frozenset[str] = frozenset()

    def including(self, *tags: str) -> RewriteQuery:
        """This query, also selecting rewrites with any of `tags`."""
        return replace(self, include=self.include | check_tags(tags))

    def excluding(self, *tags: str) -> RewriteQuery:
        """This query, dropping rewrites (and lowering steps such as 'fusion') with any of
        `tags`."""
        return replace(self, exclude=self.exclude | check_tags(tags))

    def requiring(self, *tags: str) -> RewriteQuery:
        """This query, keeping only rewrites that have every one of `tags`."""
        return replace(self, require=self.require | check_tags(tags))

    def selects(self, tags: Iterable[str]) -> bool:
        """Whether a rewrite with `tags` runs under this query."""
        tags = frozenset(tags)
        return bool(tags & self.include) and self.require <= tags and not tags & self.exclude

    def __str__(self) -> str:
        parts = [f"{k}={','.join(sorted(v))}" for k, v in
                 (("include", self.include), ("exclude", self.exclude),
                  ("require", self.require)) if v]
        return f"RewriteQuery({'; '.join(parts)})"


PREDEFINED = {"FAST_RUN": RewriteQuery(frozenset({"fast_run"})),
              "FAST_COMPILE": RewriteQuery(frozenset({"fast_compile"})),
              "NONE": RewriteQuery()}
# the tags that name a mode's rewrites (a rewrite registered without one gets its pass's)
MODE_TAGS = frozenset().union(*(q.include for q in PREDEFINED.values()))


def as_query(query: RewriteQuery | str, who: str = "rewrite_graph") -> RewriteQuery:
    """`query` itself, or the predefined query it names ('FAST_RUN', 'FAST_COMPILE', 'NONE')."""
    if isinstance(query, RewriteQuery):
        return query
    if isinstance(query, str) and query in PREDEFINED:
        return PREDEFINED[query]
    raise ValueError(f"{who}: the rewrite query or mode must be one of "
                     f"{', '.join(PREDEFINED)} or a RewriteQuery, got {query!r}")


def backend_tags() -> dict[str, list[str]]:
    """Each tag some registered backend declares in `rewrite_tags`, with those backends."""
    from theanine.backend import backends

    owners: dict[str, list[str]] = {}
    for name, backend in backends().items():
        for tag in backend.rewrite_tags:
            owners.setdefault(tag, []).append(name)
    return owners


def known_tags() -> tuple[set[str], set[str]]:
    """(tags, rewrite names): every tag a query may use, the plugins' rewrites and the
    backends' tags included; a rewrite's name is a tag of that rewrite alone."""
    from theanine.rewrite.db import all_dbs
    from theanine.rewrite.engine import load_plugin_rewrites

    load_plugin_rewrites()
    tags, names = set(CORE_TAGS) | set(backend_tags()), set()
    for db in all_dbs():
        for entry in db.entries.values():
            names.add(entry.name)
            tags |= entry.tags - {entry.name}
    return tags, names - tags


def check_tags(tags: Iterable[str]) -> frozenset[str]:
    """`tags` as a set, or a ValueError naming the unknown ones and the known tags."""
    tags = frozenset(tags)
    if not tags:
        return tags
    bad = [t for t in tags if not isinstance(t, str)]
    if bad:
        raise TypeError(f"rewrite tags are strings, got {bad[0]!r}")
    known, names = known_tags()
    unknown = sorted(tags - known - names)
    if unknown:
        raise ValueError(f"unknown rewrite tag{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(map(repr, unknown))}; known tags: "
                         f"{', '.join(sorted(known))}, or a rewrite's name (`theanine info` "
                         "lists them)")
    return tags
