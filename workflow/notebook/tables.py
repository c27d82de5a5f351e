"""Small tables for notebooks, without pandas: HTML in Jupyter, Markdown or text elsewhere."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def format_cell(value: Any) -> str:
    """Format one value: floats with 4 significant digits, ``None`` as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.1f}"
    return str(value)


@dataclass(frozen=True)
class Table:
    """A table shown as HTML by Jupyter (``_repr_html_``) and as text by ``print``.

    Args:
        headers: The column names.
        rows: The rows, each as long as ``headers``.
        title: An optional caption.
    """

    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]
    title: str = ""

    def __post_init__(self) -> None:
        for number, row in enumerate(self.rows):
            if len(row) != len(self.headers):
                raise ValueError(
                    f"row {number} has {len(row)} cells but the table has {len(self.headers)} "
                    f"columns ({', '.join(self.headers)}); give every row one value per column."
                )

    def column(self, name: str) -> list[Any]:
        """Return the values of one column.

        Raises:
            KeyError: When no column has this name.
        """
        if name not in self.headers:
            raise KeyError(f"no column {name!r}; the columns are {list(self.headers)}")
        index = list(self.headers).index(name)
        return [row[index] for row in self.rows]

    def _repr_html_(self) -> str:
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in self.headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(format_cell(v))}</td>" for v in row) + "</tr>"
            for row in self.rows
        )
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def _repr_markdown_(self) -> str:
        lines = [f"**{self.title}**", ""] if self.title else []
        lines.append("| " + " | ".join(str(h) for h in self.headers) + " |")
        lines.append("|" + "---|" * len(self.headers))
        for row in self.rows:
            cells = (format_cell(v).replace("|", "\\|") for v in row)
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def __str__(self) -> str:
        cells = [[str(h) for h in self.headers]] + [[format_cell(v) for v in r] for r in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.headers))]
        lines = [self.title] if self.title else []
        for number, row in enumerate(cells):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            if number == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)
