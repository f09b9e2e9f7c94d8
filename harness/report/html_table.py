"""HTML tables for the report: cell formatters and one table renderer, every text escaped."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

Format = Callable[[Any], str]
#: (frame column, header text, cell formatter)
Column = tuple[str, str, Format]
#: Columns whose text may wrap; every other table cell stays on one line.
WRAP_COLUMNS = frozenset({"reason", "settings", "candidates"})


def esc(value: Any) -> str:
    """Data as HTML text; missing values are empty."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return html.escape(str(value))


def note(text: str) -> str:
    """A sentence standing in for a table or plot that has nothing to show."""
    return f'<p class="note">{html.escape(text)}</p>'


def missing(value: Any) -> bool:
    """None or NaN (text is never missing)."""
    return value is None or (not isinstance(value, str) and pd.isna(value))


def formatter(spec: str) -> Format:
    """A formatter applying ``spec`` to numbers; other values pass through as text."""

    def fmt(value: Any) -> str:
        if missing(value):
            return ""
        try:
            return spec.format(float(value))
        except (TypeError, ValueError):
            return str(value)

    return fmt


def fmt_ms(value: Any) -> str:
    """Milliseconds: two decimals below 100, one above."""
    if missing(value):
        return ""
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.1f}"


def fmt_si(value: Any) -> str:
    """A count with a k/M/G suffix."""
    if missing(value):
        return ""
    for scale, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{suffix}"
    return f"{value:g}"


def fmt_str(value: Any) -> str:
    """Text as it is; missing values are empty."""
    return "" if missing(value) else str(value)


fmt_int = formatter("{:.0f}")
fmt_num1 = formatter("{:.1f}")
fmt_num2 = formatter("{:.2f}")
fmt_num3 = formatter("{:.3f}")
fmt_pct = formatter("{:.1f}%")
fmt_signed_pct = formatter("{:+.1f}%")
fmt_ratio = formatter("{:.2f}×")
fmt_sci = formatter("{:.1e}")


def render_table(
    frame: pd.DataFrame,
    columns: Iterable[Column],
    *,
    sortable: bool = False,
    table_id: str | None = None,
    row_class: Callable[[Mapping[str, Any]], str] | None = None,
    print_columns: frozenset[str] | None = None,
) -> str:
    """An HTML table; cells carry ``data-v`` (the raw value) for sorting and for tests.

    Columns missing from ``frame`` are left out. With ``print_columns``, every
    other column is marked ``screen-only`` (hidden in print).
    """
    columns = [c for c in columns if c[0] in frame.columns]

    def classes(key: str) -> str:
        names = ["wrap"] if key in WRAP_COLUMNS else []
        if print_columns is not None and key not in print_columns:
            names.append("screen-only")
        return f' class="{" ".join(names)}"' if names else ""

    head = "".join(f"<th{classes(key)}>{html.escape(title)}</th>" for key, title, _ in columns)
    body = []
    for row in frame.to_dict(orient="records"):
        cls = f' class="{html.escape(row_class(row))}"' if row_class else ""
        cells = []
        for key, _, fmt in columns:
            value = row.get(key)
            raw = "" if missing(value) else value
            cells.append(f'<td{classes(key)} data-v="{esc(raw)}">{html.escape(fmt(value))}</td>')
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    attrs = f' id="{table_id}"' if table_id else ""
    attrs += ' class="sortable"' if sortable else ""
    return (
        f'<div class="scroll"><table{attrs}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )
