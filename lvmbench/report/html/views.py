"""What a report page shows, as small frozen dataclasses: the seam between reading results and drawing them.

The adapters (:mod:`lvmbench.report.html.adapt` for run directories,
:mod:`lvmbench.report.html.adapt_series` for suites, sweeps, folds and seeds)
are the only modules that read result files; they fill these views.  The
renderers (:mod:`lvmbench.report.html.blocks`, :mod:`lvmbench.report.html.pages`)
take nothing else, so a page can be drawn (and tested) from hand-made views,
and a change in the files' layout touches the adapters only.

Rates are fractions (0.553, printed 55.3); a missing value is None.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("run", "compare", "suite", "sweep", "cv", "seeds")
"""The kinds of page: one run, several runs (the compare leaderboard), a suite, a sweep, a CV run, a seeds run."""


@dataclass(frozen=True)
class Est:
    """A value and its 95 % interval (either end None when not computed)."""

    value: float | None
    lo: float | None = None
    hi: float | None = None


NO_EST = Est(None)


@dataclass(frozen=True)
class Extra:
    """One more column of a row: its header, the text shown and what it sorts by."""

    header: str
    text: str
    key: float | None = None


@dataclass(frozen=True)
class Row:
    """One leaderboard row: a predictor (or a task, a context length) against the best baseline."""

    name: str
    kind: str  # "model" or "baseline"
    hits: tuple[Est, ...]  # one per Board.ks
    mrr: Est
    n_queries: int | None = None
    lift: Est = NO_EST  # in Hit@5 over the best baseline
    mcnemar_p: float | None = None
    holm_p: float | None = None
    wtl: tuple[int, int, int] | None = None
    note: str = ""
    extra: tuple[Extra, ...] = ()


@dataclass(frozen=True)
class Board:
    """A sortable leaderboard: rows with Hit@K and MRR intervals, lift, McNemar (Holm) and W/T/L."""

    ks: tuple[int, ...]
    rows: tuple[Row, ...]
    first: str = "predictor"
    best_baseline: str | None = None
    notes: tuple[str, ...] = ()
    caption: str = ""
    kind_column: bool = True  # False where every row is a model (a suite's tasks)


@dataclass(frozen=True)
class Grid:
    """A plain sortable table: display strings, what each cell sorts by, a class per row."""

    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    keys: tuple[tuple[float | None, ...], ...]
    classes: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    """A gate's verdict in one line; ``passed`` None when there is nothing to pass."""

    label: str
    passed: bool | None
    text: str


@dataclass(frozen=True)
class Headline:
    """The page's first lines: (label, text) facts and the gate verdicts."""

    facts: tuple[tuple[str, str], ...]
    verdicts: tuple[Verdict, ...] = ()


@dataclass(frozen=True)
class Curves:
    """A training history: losses and the early-stopping metric per epoch, the best epoch marked."""

    label: str
    epochs: tuple[float, ...]
    train_loss: tuple[float | None, ...]
    val_loss: tuple[float | None, ...]
    stop_metric: str
    stop_values: tuple[float | None, ...]
    best_epoch: float | None
    stop_reason: str = ""


@dataclass(frozen=True)
class Ranks:
    """Where the target ranked among the candidates: counts per rank bin [edges[i], edges[i+1])."""

    label: str
    counts: tuple[int, ...]
    edges: tuple[float, ...]
    n_queries: int
    median: float | None = None


@dataclass(frozen=True)
class Offsets:
    """One predictor's mean cos(prediction, target t+k) per offset k, and its margin."""

    name: str
    kind: str
    margin: float | None
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class Direction:
    """The direction diagnostics of one run: offsets k and a row per predictor (the model first)."""

    label: str
    offsets: tuple[int, ...]
    rows: tuple[Offsets, ...]


@dataclass(frozen=True)
class Spread:
    """Hit@5 per fold or per training seed, with each one's interval: how much a single run could vary."""

    what: str  # "fold" or "seed"
    labels: tuple[str, ...]
    values: tuple[Est, ...]
    summary: str = ""


@dataclass(frozen=True)
class Link:
    """An artefact, by a path relative to the page."""

    label: str
    href: str
    note: str = ""


@dataclass(frozen=True)
class Details:
    """Hashes, recipe and environment: the collapsed part of the page."""

    hashes: tuple[tuple[str, str], ...] = ()
    recipe: str = ""  # the recipe as indented JSON
    env: tuple[tuple[str, str], ...] = ()
    more: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RunParts:
    """What one run directory adds to a page beyond its numbers: curves, ranks, direction, links."""

    label: str
    curves: Curves | None = None
    ranks: Ranks | None = None
    direction: Direction | None = None
    links: tuple[Link, ...] = ()


@dataclass(frozen=True)
class Group:
    """A drill-down: one task of a suite (or the folds of a CV run, one model over seeds)."""

    name: str
    board: Board
    spread: Spread | None = None
    runs: tuple[RunParts, ...] = ()
    facts: tuple[tuple[str, str], ...] = ()
    verdicts: tuple[Verdict, ...] = ()


@dataclass(frozen=True)
class Trend:
    """A metric along a swept setting (Hit@5 against context length), and a flat reference line."""

    xlabel: str
    xs: tuple[float, ...]
    values: tuple[Est, ...]
    reference: str = ""
    reference_value: float | None = None


@dataclass(frozen=True)
class PageView:
    """A whole page: ``kind`` one of :data:`KINDS`; every part but the headline may be empty."""

    kind: str
    title: str
    headline: Headline
    board: Board | None = None
    bars_title: str = "Hit@5 with 95 % intervals"
    groups: tuple[Group, ...] = ()
    trend: Trend | None = None
    runs: tuple[RunParts, ...] = ()
    details: Details = field(default_factory=Details)
    links: tuple[Link, ...] = ()
    bars: Board | None = None  # what the Hit@5 chart draws, when not the leaderboard's own rows
    metrics: Grid | None = None  # every metric the tables show (nDCG@K, CA, PAR ...), folded away
