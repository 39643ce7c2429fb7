"""Text tables for functions that print tabular results (THREAT_TRIAGE_PRINT, LOCAL_LS, HDFS_LS).

Written here rather than taken from a library: the output is a fixed, boxed layout in the style of
Metron's shell tables, a few lines of code, and no table library is a dependency of the language.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["render_table"]


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A boxed table: a header row, then one row per entry, each cell padded to its column's width."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(left: str, fill: str, middle: str, right: str) -> str:
        return left + middle.join(fill * (w + 2) for w in widths) + right

    def cells(values: Sequence[str]) -> str:
        return "║" + "│".join(f" {v.ljust(w)} " for v, w in zip(values, widths)) + "║"

    out = [line("╔", "═", "╤", "╗"), cells(headers), line("╠", "═", "╪", "╣")]
    for index, row in enumerate(rows):
        if index:
            out.append(line("╟", "─", "┼", "╢"))
        out.append(cells(row))
    out.append(line("╚", "═", "╧", "╝"))
    return "\n".join(out) + "\n"
