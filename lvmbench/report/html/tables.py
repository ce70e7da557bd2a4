"""Tables: what is shown and what it sorts by are separate, so "55.3 [52.1, 58.4]" sorts as 0.553.

A cell with a sort key carries it as ``data-sort`` (the page script sorts by
it numerically) and is right-aligned in monospace; a missing key (None or NaN)
leaves the attribute out, and such rows sort last in either direction.  Row
classes mark rows for the CSS, e.g. ``baseline`` (grey italic) or
``highlight`` (bold).
"""

from __future__ import annotations

import math
from typing import Sequence

from lvmbench.report.html.page import Html, escape

__all__ = ["table", "sort_value"]

Key = float | int | None


def sort_value(x: Key) -> str | None:
    """The ``data-sort`` text of a key (shortest round-trip repr), or None when the key is missing."""
    if x is None or isinstance(x, bool) or not math.isfinite(float(x)):
        return None
    return repr(float(x))


def _check(headers: Sequence[str], rows: Sequence[Sequence[str]], keys: Sequence[Sequence[Key]] | None,
           classes: Sequence[str | None] | None) -> None:
    """Ragged input is a caller bug; say which row instead of drawing a misaligned table."""
    for i, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(f"row {i} has {len(row)} cells for {len(headers)} headers")
        if keys is not None and len(keys[i]) != len(headers):
            raise ValueError(f"sort_keys row {i} has {len(keys[i])} keys for {len(headers)} headers")
    if keys is not None and len(keys) != len(rows):
        raise ValueError(f"{len(keys)} rows of sort_keys for {len(rows)} rows")
    if classes is not None and len(classes) != len(rows):
        raise ValueError(f"{len(classes)} row_classes for {len(rows)} rows")


def _cell(text: str, key: Key, numeric: bool) -> str:
    """A cell; in a numeric column right-aligned and monospace, with ``data-sort`` unless its key is missing."""
    value = sort_value(key)
    sort = f' data-sort="{value}"' if value is not None else ""
    cls = ' class="num"' if numeric else ""
    return f"<td{cls}{sort}>{escape(text)}</td>"


def _head(headers: Sequence[str], numeric: Sequence[bool], sortable: bool) -> str:
    focus = ' tabindex="0"' if sortable else ""
    cls = {True: ' class="num"', False: ""}
    cells = "".join(f'<th scope="col"{focus}{cls[num]}>{escape(h)}</th>' for h, num in zip(headers, numeric))
    return f"<thead><tr>{cells}</tr></thead>"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], sort_keys: Sequence[Sequence[Key]] | None = None,
          row_classes: Sequence[str | None] | None = None, sortable: bool = True,
          caption: str | None = None) -> Html:
    """An HTML table of display strings; ``sort_keys[i][j]`` (or None) is what cell (i, j) sorts by."""
    _check(headers, rows, sort_keys, row_classes)
    keys = sort_keys if sort_keys is not None else [[None] * len(headers) for _ in rows]
    numeric = [any(sort_value(k[j]) is not None for k in keys) for j in range(len(headers))]
    body = []
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes is not None else None
        attr = f' class="{escape(cls)}"' if cls else ""
        body.append(f"<tr{attr}>" + "".join(_cell(t, k, n) for t, k, n in zip(row, keys[i], numeric)) + "</tr>")
    open_tag = '<table class="sortable">' if sortable else "<table>"
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return Html(f"{open_tag}{cap}{_head(headers, numeric, sortable)}\n<tbody>\n" + "\n".join(body)
                + "\n</tbody></table>\n")
