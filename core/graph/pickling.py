"""Pickling graphs at any depth: Variables and Apply nodes are pickled without following
links from node to node, so the pickler never recurses along a chain of ops.

A Variable's pickled state leaves out its `owner`; an owned Variable instead carries its
*ancestry*, the Apply nodes it depends on in topological order (pickled as a plain list). Each
node in that list is pickled with its inputs and outputs after every node before it, so their
owners are already in the pickle and pickling one node never descends further. Unpickling a node
sets its outputs' `owner` and `index` again. Within one `pickle.dumps`, variables whose owner is
already in an ancestry list share it, and a new list holds only nodes no list holds yet, so a
graph costs O(nodes) however many of its variables are pickled; the pickle memo keeps every node
and variable one object after loading.
"""

from __future__ import annotations

import weakref
from typing import Any

# Apply id -> the ancestry list of an owned Variable being pickled right now that holds it.
# The lists are alive only while a pickler's memo holds them (during one dump); an Apply in a
# live list cannot be collected, so its id cannot be reused while the entry exists.
_LIVE: weakref.WeakValueDictionary = weakref.WeakValueDictionary()

# tag entries that are caches of compiled code, rebuilt on demand rather than pickled
_TAG_CACHES = ("_eval_cache",)


class _Ancestry(list):
    """Apply nodes in topological order; pickled as a plain list (weak-referenceable here so
    that `_LIVE` forgets it when the dump that made it ends)."""

    __slots__ = ("__weakref__",)

    def __reduce_ex__(self, protocol):
        return list, (), None, iter(self)


def _ancestry(owner) -> _Ancestry:
    """A live ancestry list holding `owner`, or a new one of the nodes `owner` depends on
    (itself included) that no live list holds yet, inputs first. The nodes left out are in
    lists that are being pickled, or were, in the same dump, so every node is pickled once."""
    found = _LIVE.get(id(owner))
    if found is not None:
        return found
    nodes = _Ancestry()
    done: set[int] = set()
    stack = [(owner, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in done:
            continue
        if expanded:
            done.add(id(node))
            nodes.append(node)
            continue
        stack.append((node, True))
        for v in reversed(node.inputs):
            o = v.owner
            if o is not None and id(o) not in done and id(o) not in _LIVE:
                stack.append((o, False))
    for node in nodes:
        _LIVE.setdefault(id(node), nodes)
    return nodes


def picklable_tag(tag: dict) -> dict:
    """`tag` without caches of compiled code (rebuilt on demand, never pickled)."""
    if any(k in tag for k in _TAG_CACHES):
        return type(tag)((k, v) for k, v in tag.items() if k not in _TAG_CACHES)
    return tag


def variable_state(v) -> dict[str, Any]:
    """What pickling keeps of a Variable: its attributes without `owner`/`index` (restored by
    the owner node) and without cached compiled functions, plus its ancestry when owned."""
    state = dict(v.__dict__)
    owner = state.pop("owner", None)
    state.pop("index", None)
    if "tag" in state:
        state["tag"] = picklable_tag(state["tag"])
    if owner is not None:
        state["_ancestry"] = _ancestry(owner)
    return state


def restore_variable(v, state: dict[str, Any]) -> None:
    """Undo `variable_state`; the owner node may have set `owner` already, or sets it later."""
    state = dict(state)
    state.pop("_ancestry", None)
    d = v.__dict__
    d.setdefault("owner", None)
    d.setdefault("index", None)
    d.update(state)


def restore_apply(node, state: dict[str, Any]) -> None:
    """Restore an Apply node and point its outputs back at it."""
    node.__dict__.update(state)
    for i, out in enumerate(node.outputs):
        out.owner, out.index = node, i
