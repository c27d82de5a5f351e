"""A stage: several states with one entry that chain like one state in the SDK's ``Chain``.

``Chain([a, b, c])`` of the Step Functions Data Science SDK links neighbours with
``a.next(b)``. A stage with one way out is a ``Chain`` itself; a stage with several ways out (the
image is given or built; the warm start finds a model or not) or whose way out is a Choice
rule (the quality gate, the endpoint's wait) is a `Stage`: its ``next`` connects every exit, and
the SDK reads its entry state wherever it reads a state's name or walks the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Exit = Callable[[Any], Any]


class Stage:
    """States with one entry and one or more exits, chainable like a single SDK state.

    Attributes:
        entry: the first state (an SDK ``State`` or ``Chain``).
    """

    def __init__(self, entry: Any, exits: Sequence[Exit]) -> None:
        """Wrap ``entry``; each exit is called with the state that follows the stage."""
        self.entry = entry
        self._exits = tuple(exits)

    @property
    def state_id(self) -> str:
        """The name of the entry state (``Next``, ``StartAt`` and ``Choices`` use it)."""
        return str(self.entry.state_id)

    def next(self, next_step: Any) -> Any:
        """Continue every exit of the stage with ``next_step``; return it (as ``State.next``)."""
        for connect in self._exits:
            connect(next_step)
        return next_step

    def accept(self, visitor: Any) -> None:
        """Let the SDK's graph visitors walk the stage's states from its entry."""
        self.entry.accept(visitor)

    def __repr__(self) -> str:
        return f"Stage({self.state_id})"


def when(choice: Any, rule: Any) -> Exit:
    """An exit through a Choice rule, added as the choice's first rule when the stage is chained."""

    def connect(next_step: Any) -> None:
        choice.choices.insert(0, [rule, next_step])

    return connect
