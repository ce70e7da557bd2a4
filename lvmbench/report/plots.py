"""Pictures: training curves of a run and the leaderboard of ``compare``.

matplotlib is an optional extra (``pip install -e ".[plot]"``).  Without it
each picture is skipped with one line saying how to install it; a picture
never fails a run.  Figures are drawn with the object-oriented API on the Agg
canvas (no pyplot, no display, no global backend switch) and written
atomically like every other artefact.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Callable

from lvmbench.io import atomic_open
from lvmbench.format import num, pct

CURVES = "curves.png"
LEADERBOARD = "leaderboard.png"
INSTALL_HINT = 'pip install -e ".[plot]"'
MODEL_COLOUR = "#1f77b4"
BASELINE_COLOUR = "#9a9a9a"
BEST_COLOUR = "#d62728"

Log = Callable[[str], None]


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Any, Any]:
    """A Figure on an Agg canvas, and its axes; ImportError without matplotlib."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols)


def _save(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    with atomic_open(path, "wb") as fh:
        fh.write(buf.getvalue())
    return path


def _draw(what: str, path: str | Path, draw: Callable[[], Any], log: Log) -> Path | None:
    """Run ``draw`` (which returns a Figure) and save it; never raises."""
    path = Path(path)
    try:
        fig = draw()
    except ImportError:
        log(f"matplotlib is not installed; skipping {path.name} ({what}); install it with: {INSTALL_HINT}")
        return None
    except Exception as exc:  # noqa: BLE001 - a picture must never fail a run
        log(f"warning: could not draw {path.name} ({what}): {type(exc).__name__}: {exc}")
        return None
    if fig is None:
        return None
    try:
        return _save(fig, path)
    except Exception as exc:  # noqa: BLE001
        log(f"warning: could not write {path}: {type(exc).__name__}: {exc}")
        return None


def _stop_metric(history: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The metric early stopping followed (history ``stop_metric``); hit@5 for histories written before it."""
    metric = history.get("stop_metric") or "hit@5"
    return metric if all(f"val_{metric}" in r for r in rows) else "hit@5"


def _metric_label(metric: str) -> str:
    """'hit@5' -> 'Hit@5', 'mrr' -> 'MRR': the trainer's own label, imported only when a curve is drawn."""
    from lvmbench.train.trainer import metric_label

    return metric_label(metric)


def _metric_text(metric: str, value: float | None) -> str:
    """A value of ``metric`` as text: a Hit@K in percent, MRR as a number."""
    return pct(value) + "%" if metric.startswith("hit@") else num(value)


def _scaled(metric: str, rows: list[dict[str, Any]]) -> list[float]:
    """The val values of ``metric`` per epoch as the panel plots them: Hit@K in percent, MRR as it is."""
    scale = 100.0 if metric.startswith("hit@") else 1.0
    return [scale * r[f"val_{metric}"] for r in rows]


def _stop_panel(ax: Any, history: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """The early-stopping metric per epoch with its best epoch starred, and Hit@5 beside it when that differs.

    The star marks the epoch the best checkpoint was kept at, so it must sit on
    the metric that chose it (MRR under the contrastive recipe), not on Hit@5.
    """
    epochs = [r["epoch"] for r in rows]
    metric = _stop_metric(history, rows)
    label = _metric_label(metric)
    unit = " (%)" if metric.startswith("hit@") else ""
    values = _scaled(metric, rows)
    handles = ax.plot(epochs, values, "o-", label=f"val {label}", color=MODEL_COLOUR)
    best = history.get("best_epoch")
    if best is not None and best in epochs:
        handles += ax.plot([best], [values[epochs.index(best)]], marker="*", markersize=14, color=BEST_COLOUR,
                           linestyle="", label=f"best epoch {best}")
    ax.set_ylabel(f"val {label}{unit}")
    ax.set_title(f"val {label} (early-stopping metric)")
    top = ax
    if metric != "hit@5" and all("val_hit@5" in r for r in rows):
        top = ax.twinx()  # Hit@5 in percent on its own scale; the star stays on the stop metric
        handles += top.plot(epochs, _scaled("hit@5", rows), "^--", label="val Hit@5", color=BASELINE_COLOUR)
        top.set_ylabel("val Hit@5 (%)")
    top.legend(handles=handles, fontsize=8)  # on the axes drawn last, so no line covers it


def plot_curves(history: dict[str, Any], path: str | Path, log: Log = print) -> Path | None:
    """Train/val loss and the val early-stopping metric per epoch, the best epoch marked.

    Returns the path, or None if skipped.
    """

    def draw() -> Any:
        rows = history.get("history") or []
        if not rows:
            return None
        fig, (loss_ax, stop_ax) = _figure(10, 3.8, ncols=2)
        epochs = [r["epoch"] for r in rows]
        loss_ax.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train loss", color=MODEL_COLOUR)
        loss_ax.plot(epochs, [r["val_loss"] for r in rows], "s-", label="val loss", color="#ff7f0e")
        best = history.get("best_epoch")
        from matplotlib.ticker import MaxNLocator

        for ax in (loss_ax, stop_ax):
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            if best is not None:
                ax.axvline(best, color=BEST_COLOUR, linestyle="--", linewidth=1, label=f"best epoch {best}")
        loss_ax.set_ylabel("recipe loss")
        loss_ax.set_title("loss")
        loss_ax.legend()
        _stop_panel(stop_ax, history, rows)
        metric = _stop_metric(history, rows)
        best_value = history.get("best_metric") if metric == history.get("stop_metric") else None
        if best_value is None and metric == "hit@5":  # a history written before best_metric was recorded
            best_value = history.get("best_hit5")
        best_txt = ("" if best_value is None
                    else f": best epoch {best}, val {_metric_label(metric)} {_metric_text(metric, best_value)}")
        fig.suptitle(f"{history.get('model', '')}{best_txt} ({history.get('stop_reason') or ''})", fontsize=10)
        return fig

    return _draw("training curves", path, draw, log)


def plot_leaderboard(board: dict[str, Any], path: str | Path, log: Log = print) -> Path | None:
    """Hit@5 of every row of a ``compare`` leaderboard with Wilson 95 % interval bars; baselines grey."""

    def draw() -> Any:
        rows = board["rows"]
        if not rows:
            return None
        fig, ax = _figure(8, 0.9 + 0.42 * len(rows))
        ys = list(range(len(rows)))
        vals = [100 * r["hit@5"] for r in rows]
        err = [[100 * (r["hit@5"] - r["hit@5_lo"]) for r in rows], [100 * (r["hit@5_hi"] - r["hit@5"]) for r in rows]]
        colours = [MODEL_COLOUR if r["kind"] == "model" else BASELINE_COLOUR for r in rows]
        ax.barh(ys, vals, xerr=err, color=colours, capsize=3, ecolor="#333333")
        ax.set_yticks(ys, [r["predictor"] for r in rows])
        ax.invert_yaxis()  # best on top
        for y, v, up in zip(ys, vals, err[1]):  # the value just past the interval's upper end
            ax.text(v + up + 0.8, y, f"{v:.1f}", va="center", ha="left", fontsize=8)
        chance = (board.get("chance") or {}).get("hit@5")
        if chance is not None:
            ax.axvline(100 * chance, color="black", linestyle=":", linewidth=1)
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        handles = [Patch(color=MODEL_COLOUR, label="model"), Patch(color=BASELINE_COLOUR, label="baseline")]
        if chance is not None:
            handles.append(Line2D([], [], color="black", linestyle=":", label=f"chance {100 * chance:.1f}%"))
        ax.legend(handles=handles, loc="lower right", fontsize=8)
        ax.set_xlabel("Hit@5 (%), bars = Wilson 95% interval")
        ax.set_xlim(0, min(105, max(v + e for v, e in zip(vals, err[1])) + 10))
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(f"{board.get('n_queries')} {board.get('pool_split') or ''} queries, pool "
                     f"{board.get('pool_size')} candidates, context excluded", fontsize=10)
        return fig

    return _draw("leaderboard", path, draw, log)


__all__ = ["CURVES", "LEADERBOARD", "INSTALL_HINT", "plot_curves", "plot_leaderboard"]
