"""A YAML composer with bounds (issue 17): at most ``MAX_NODES`` nodes, nesting at most ``MAX_DEPTH`` levels,
aliases expanding to at most ``MAX_ALIASED_NODES`` nodes in all.

An alias is a reference, so a 600-byte file of aliases to aliases (the "billion laughs") is a document of 10^9
nodes to whatever walks it (the schema check, the templates); and a composer recurses once per level, so 300 levels
of nesting is a ``RecursionError``. Other loaders bound the same things: Go's yaml.v3 refuses a document whose
aliases expand too much ("document contains excessive aliasing"), SnakeYAML has ``maxAliasesForCollections`` and
``nestingDepthLimit``. And ruamel's round-trip parser, pure Python, reads about 20,000 nodes a second: a file of
small nodes is bounded by their count, not only by its size. All are counted while composing (which pulls the
parser along), before anything is built, and reported at the node that crosses the bound.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml.composer import Composer, ComposerError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, SequenceNode

MAX_NODES = 20_000  # a project of 500 tasks is about 8,000
MAX_DEPTH = 64  # a project file nests about 8 levels (tasks, a task, executor, env, ...)
MAX_ALIASED_NODES = 10_000  # every alias's nodes counted as if written out: `<<: *defaults` a hundred times fits


class Refused(ComposerError):
    """A bound of this module crossed, or an alias cycle: not a syntax error, a file refused."""


class BoundedComposer(Composer):
    """ruamel's composer, refusing too many nodes, deep nesting and alias expansion past the bounds (``Refused``)."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self._depth = 0
        self._aliased = 0
        self._nodes = 0
        self._sizes: dict[int, int] = {}  # id(node) -> its nodes, aliases written out

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None and id(target) not in self._sizes:  # `&a [*a]`: a list holding itself
                raise Refused(None, None, "an alias inside the node it names (a cycle)", event.start_mark)
            if target is not None:
                self._aliased += self._sizes[id(target)]
                if self._aliased > MAX_ALIASED_NODES:
                    raise Refused(
                        None, None, f"aliases expand to more than {MAX_ALIASED_NODES} nodes", event.start_mark
                    )
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            raise Refused(None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise Refused(None, None, f"more than {MAX_NODES} values and keys in one file", event.start_mark)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._sizes[id(node)] = 1 + sum(self._sizes.get(id(child), 1) for child in _children(node))
        return node


def _children(node: Any) -> list:
    if isinstance(node, SequenceNode):
        return node.value
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []
