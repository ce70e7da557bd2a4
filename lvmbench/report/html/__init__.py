"""Self-contained HTML: the report page (``lvmbench report``, ``report.html``) and its rendering primitives.

The primitives (:mod:`~.page`, :mod:`~.tables`, :mod:`~.svg`, :mod:`~.axes`,
exported here) take plain numbers and strings and return an HTML fragment
(:class:`Html`, a ``str``).  On top of them: :mod:`~.views` (what a page
shows, as small dataclasses), :mod:`~.blocks` and :mod:`~.pages` (views ->
HTML), the adapters :mod:`~.adapt` (run directories, through the typed
result) and :mod:`~.adapt_series` (suite, CV, seeds and sweep summaries),
the only modules here that read files, and :mod:`~.build` (pick the adapter,
render, write).  No output ever refers to the network: CSS, SVG and the one
small script are inline, so a report opens offline, from an e-mail
attachment or an archive, and looks the same in ten years.
"""

from lvmbench.report.html.page import Html, escape, page, section
from lvmbench.report.html.svg import histogram, interval_bars, line_chart, offsets_chart
from lvmbench.report.html.tables import table

__all__ = ["Html", "escape", "page", "section", "table", "interval_bars", "line_chart", "histogram", "offsets_chart"]
