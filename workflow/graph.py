"""Draw a state machine offline: the picture behind ``render --graph`` and the notebooks.

The graph is drawn with matplotlib (the SDK's ``render_graph`` needs classic Jupyter and a CDN):
states in layers by their distance from ``StartAt``, Task states as blue boxes, Choice states
yellow, Pass grey, Wait purple, Succeed green, Fail red; transitions as solid arrows, ``Catch``
routes dashed red, loops (an edge back to an earlier layer) dotted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workflow.errors import WorkflowError

__all__ = ["draw_graph", "layout"]


_COLOURS = {
    "Task": "#cfe2ff",
    "Choice": "#fff3cd",
    "Pass": "#e9ecef",
    "Wait": "#e2d9f3",
    "Succeed": "#d1e7dd",
    "Fail": "#f8d7da",
    "Parallel": "#cff4fc",
    "Map": "#cff4fc",
}


def _edges(states: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(source, target, kind) for every transition; kind is next, choice or catch."""
    edges: list[tuple[str, str, str]] = []
    for name, state in states.items():
        if isinstance(state.get("Next"), str):
            edges.append((name, state["Next"], "next"))
        for rule in state.get("Choices") or []:
            if isinstance(rule.get("Next"), str):
                edges.append((name, rule["Next"], "choice"))
        if isinstance(state.get("Default"), str):
            edges.append((name, state["Default"], "choice"))
        for catcher in state.get("Catch") or []:
            if isinstance(catcher.get("Next"), str):
                edges.append((name, catcher["Next"], "catch"))
    return [(a, b, kind) for a, b, kind in edges if b in states]


def layout(definition: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Return (x, y) per state.

    The main path (states from which a Succeed state is reachable) is laid out top-down in
    layers by distance from ``StartAt``; the failure handling (the rest: failure markers,
    ``NotifyFailure``, ``Failed``) goes in a column on the right, each marker level with the
    state whose errors it records, the failure tail below.
    """
    states: dict[str, Any] = definition["States"]
    edges = _edges(states)
    can_succeed = {n for n, s in states.items() if s.get("Type") == "Succeed"}
    changed = True
    while changed:  # reverse reachability from the Succeed states
        changed = False
        for a, b, _ in edges:
            if b in can_succeed and a not in can_succeed:
                can_succeed.add(a)
                changed = True
    main = [n for n in states if n in can_succeed] or list(states)
    main_set = set(main)
    layer: dict[str, int] = {definition["StartAt"]: 0}
    frontier = [definition["StartAt"]]
    while frontier:  # breadth first along the main path
        following = []
        for name in frontier:
            for a, b, _ in edges:
                if a == name and b in main and b not in layer:
                    layer[b] = layer[name] + 1
                    following.append(b)
        frontier = following
    positions: dict[str, tuple[float, float]] = {}
    rows: dict[int, list[str]] = {}
    for name in main:
        rows.setdefault(layer.get(name, 0), []).append(name)
    for row, names in rows.items():
        for i, name in enumerate(names):
            positions[name] = ((i - (len(names) - 1) / 2) * 3.4, -row * 1.4)
    right = max((x for x, _ in positions.values()), default=0.0) + 4.0
    bottom = min((y for _, y in positions.values()), default=0.0)
    taken: dict[float, int] = {}
    tail = []
    for name in states:
        if name in positions:
            continue
        sources = [positions[a][1] for a, b, _ in edges if b == name and a in main_set]
        if not sources:
            tail.append(name)
            continue
        y = sum(sources) / len(sources)
        slot = taken.get(y, 0)
        taken[y] = slot + 1
        positions[name] = (right + 3.2 * slot, y)
    for i, name in enumerate(tail):
        positions[name] = (right, bottom - 1.4 * (i + 1))
    return positions


def draw_graph(definition: dict[str, Any], path: Path) -> None:
    """Draw the state machine to ``path`` (.png or .svg) with matplotlib, offline.

    Raises:
        WorkflowError: When the suffix is not .png or .svg, or matplotlib is missing.
    """
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise WorkflowError(f"--graph {path} must end in .png or .svg; e.g. --graph machine.svg")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import FancyBboxPatch
    except ImportError as exc:
        raise WorkflowError(
            "render --graph needs matplotlib; install the dev extra (pip install -e '.[dev]')"
        ) from exc
    states: dict[str, Any] = definition["States"]
    positions = layout(definition)
    xs = [p[0] for p in positions.values()]
    ys = [p[1] for p in positions.values()]
    width = max(8.0, (max(xs) - min(xs)) * 0.9 + 4)
    height = max(6.0, (max(ys) - min(ys)) * 0.55 + 2)
    figure, axes = plt.subplots(figsize=(width, height))
    axes.set_axis_off()
    layer_of = {name: -y for name, (_, y) in positions.items()}
    for a, b, kind in _edges(states):
        (x1, y1), (x2, y2) = positions[a], positions[b]
        backwards = layer_of[b] <= layer_of[a] and kind != "catch"
        style = {
            "catch": {"color": "#b02a37", "linestyle": "--", "alpha": 0.45},
            "choice": {"color": "#997404", "linestyle": "-", "alpha": 0.9},
            "next": {"color": "#343a40", "linestyle": "-", "alpha": 0.9},
        }[kind]
        if backwards:
            style = {**style, "linestyle": ":"}
        axes.annotate(
            "",
            xy=(x2, y2 + 0.28),
            xytext=(x1, y1 - 0.28),
            arrowprops={
                "arrowstyle": "->",
                "connectionstyle": "arc3,rad=0.35" if backwards else "arc3,rad=0.0",
                "lw": 1.0,
                **style,
            },
        )
    for name, (x, y) in positions.items():
        kind = states[name].get("Type", "Task")
        box_width = max(2.2, 0.13 * len(name) + 0.4)
        axes.add_patch(
            FancyBboxPatch(
                (x - box_width / 2, y - 0.28),
                box_width,
                0.56,
                boxstyle="round,pad=0.02,rounding_size=0.15",
                facecolor=_COLOURS.get(kind, "#ffffff"),
                edgecolor="#495057",
                linewidth=1.0,
            )
        )
        axes.text(x, y + 0.06, name, ha="center", va="center", fontsize=9, weight="bold")
        resource = str(states[name].get("Resource", ""))
        detail = resource.split(":::")[-1] if resource else kind
        axes.text(x, y - 0.15, detail, ha="center", va="center", fontsize=6.5, color="#495057")
    axes.set_xlim(min(xs) - 2.5, max(xs) + 2.5)
    axes.set_ylim(min(ys) - 1.0, max(ys) + 1.0)
    axes.set_title(definition.get("Comment", "")[:120], fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format=suffix[1:], dpi=110)
    plt.close(figure)
