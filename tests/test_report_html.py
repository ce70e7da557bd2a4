"""The HTML report of every kind of result directory, built from real small runs and read back in Chromium.

One session builds a run, a compare leaderboard (``run --model gru,copy_last``),
a seeds run, a 3-fold CV run, a context sweep and a two-task suite on tiny
synthetic data (a couple of epochs each), writes each page with
``lvmbench report PATH --html OUT`` and opens it from disk in headless
Chromium (tests/browser.py).  What is checked is the rendered DOM: the
numbers in the leaderboards and charts are the numbers of results.json
(and of suite.json, cv.json, seeds.json, sweep.json), clicking a column
header reorders the rows, baselines look different from models, the console
is clean and no request leaves the file.  A screenshot of every page is kept
in ``$LVMBENCH_ARTEFACTS`` (default: a folder under pytest's tmp dir, printed
at the end).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from browser import artefacts_dir, launch

from conftest import job
from lvmbench import format as fmt
from lvmbench.cli import main
from lvmbench.data.synth import write_synth
from lvmbench.result import History, Result

QUICK = ["--set", "eval.bootstrap=20", "--set", "train.max_epochs=2", "--set", "model.hidden=32",
         "--set", "model.layers=1", "--set", "model.head_hidden=32", "--set", "train.accum_steps=1",
         "--set", "eval.latency_calls=10", "--set", "eval.latency_seconds=0.2"]
KINDS = ("run", "compare", "seeds", "cv", "sweep", "suite")
NETWORK = re.compile(r"""(?:src|href|srcset|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//|@import|url\(""",
                     re.IGNORECASE)


def _ok(argv: list[str]) -> None:
    assert main(argv) == 0, argv


def _suite_root(root: Path) -> Path:
    for name, seed, test_frac in (("alpha", 1, 0.2), ("beta", 2, 0.3)):
        store = write_synth(root / name, n_chains=40, dim=16, seed=seed)
        mpath = store.path / "manifest.json"
        manifest = json.loads(mpath.read_text())
        manifest["recipe"] = {"data": {"train_frac": 0.8 - test_frac, "val_frac": 0.2, "test_frac": test_frac,
                                       "min_chain_len": 7}}
        manifest["suite"] = {"task": name, "domain": f"synthetic {name}"}
        mpath.write_text(json.dumps(manifest, indent=2))
    return root


@pytest.fixture(scope="session")
def dirs(tiny_store, tmp_path_factory):
    """Every kind of result directory, trained once for the session (threads restored afterwards)."""
    import faiss
    import torch

    threads = torch.get_num_threads(), faiss.omp_get_max_threads()
    base = tmp_path_factory.mktemp("html-runs")
    data = ["--data", str(tiny_store.path)]
    _ok(["run", "--model", "gru,copy_last", *data, "--out", str(base / "multi"), *QUICK])
    _ok(["run", "--model", "gru", "--seeds", "0,1", *data, "--out", str(base / "seeds"), *QUICK])
    _ok(["run", "--model", "gru", "--folds", "3", *data, "--out", str(base / "cv"), *QUICK])
    _ok(["sweep", "--model", "gru", "--context", "3,6", *data, "--out", str(base / "sweep"), *QUICK])
    root = _suite_root(tmp_path_factory.mktemp("html-suite-root"))
    _ok(["suite", "run", "--model", "gru", "--root", str(root), "--out", str(base / "suite"), *QUICK])
    torch.set_num_threads(threads[0])
    faiss.omp_set_num_threads(threads[1])
    return {"run": job(base / "multi", "gru-s0"), "compare": base / "multi", "seeds": base / "seeds",
            "cv": base / "cv", "sweep": base / "sweep", "suite": base / "suite"}


@pytest.fixture(scope="session")
def pages(dirs, tmp_path_factory):
    """Each kind's page, written by the command line into a folder of its own (links relative to it)."""
    out = tmp_path_factory.mktemp("html-pages")
    written = {}
    for kind, path in dirs.items():
        written[kind] = out / f"{kind}.html"
        _ok(["report", str(path), "--html", str(written[kind])])
    return written


@pytest.fixture(scope="session")
def shots(tmp_path_factory, request):
    path = artefacts_dir(tmp_path_factory.mktemp("artefacts"))
    yield path
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\nHTML report screenshots: {path}")


@pytest.fixture(scope="module")
def browser():
    b = launch()
    yield b
    b.close()


def js(b, script: str, *args):
    return b.driver.execute_script(script, *args)


BOARD_JS = """
const t = document.querySelector(arguments[0]);
if (!t) { return null; }
return [Array.from(t.tHead.rows[0].cells).map(c => c.textContent.trim()),
        Array.from(t.tBodies[0].rows).map(r => [r.className,
            Array.from(r.cells).map(c => [c.textContent, c.dataset.sort ?? null])])];"""


def rows_of(b, sel: str) -> list[dict]:
    """The rows of the table ``sel`` in their shown order: {header: (text, data-sort), "_class": the row's class}."""
    got = js(b, BOARD_JS, sel)
    assert got, f"no table {sel}"
    heads, rows = got
    return [{"_class": cls, **dict(zip(heads, cells))} for cls, cells in rows]


def board(b, scope: str = "#leaderboard") -> dict[str, dict]:
    """The first leaderboard under ``scope``, keyed by its first column's text."""
    heads = js(b, BOARD_JS, f"{scope} div.board table")[0]
    return {r[heads[0]][0]: r for r in rows_of(b, f"{scope} div.board table")}


def norm(text: str) -> str:
    return " ".join(text.split())


def check_cell(cell, value: float | None, ci, pct: bool = True) -> None:
    """The cell shows ``value`` with its interval as lvmbench prints it, and sorts by exactly ``value``."""
    text, key = cell
    want = fmt.pct_ci(value, ci) if pct else fmt.num_ci(value, ci)
    assert norm(text) == want
    assert (key is None and value is None) or float(key) == value


def check_scores(row, ks, values: dict, cis: dict, mrr_ci: bool = True) -> None:
    """Hit@K and MRR cells equal the recorded values and intervals (``mrr_ci=False``: compare's own MRR interval,
    from more bootstrap resamples than the run recorded, so only the value is the run's)."""
    for k in ks:
        check_cell(row[f"Hit@{k} % [95% CI]"], values[f"hit@{k}"], cis[f"hit@{k}"])
    if mrr_ci:
        check_cell(row["MRR [95% CI]"], values["mrr"], cis["mrr"], pct=False)
    else:
        assert float(row["MRR [95% CI]"][1]) == values["mrr"]
        assert norm(row["MRR [95% CI]"][0]).startswith(fmt.num(values["mrr"]) + " [")


def open_page(b, path: Path, shots: Path, name: str) -> None:
    b.open(path)
    assert b.driver.title.startswith("lvmbench")
    b.screenshot(shots / f"report_{name}.png")


def assert_clean(b, path: Path) -> None:
    """No console error, and the only request the page made was for itself."""
    assert b.console_errors() == []
    assert b.outside_requests() == []
    assert b.requests() == [path.resolve().as_uri()]


def check_sorting(b, header: str, scope: str = "#leaderboard") -> None:
    """Clicking ``header`` sorts the rows by its data-sort keys, ascending then descending (missing keys last)."""
    sel = f"{scope} div.board table"
    first = js(b, BOARD_JS, sel)[0][0]
    before = [r[first][0] for r in rows_of(b, sel)]
    th = js(b, "return Array.from(document.querySelector(arguments[0]).tHead.rows[0].cells)"
               ".find(c => c.textContent.trim() === arguments[1])", sel, header)
    th.click()
    up = rows_of(b, sel)
    keys = [float(r[header][1]) for r in up if r[header][1] is not None]
    assert keys == sorted(keys) and th.get_attribute("aria-sort") == "ascending"
    assert all(r[header][1] is None for r in up[len(keys):])  # rows without a value last
    th.click()
    down = rows_of(b, sel)
    keys = [float(r[header][1]) for r in down if r[header][1] is not None]
    assert keys == sorted(keys, reverse=True) and th.get_attribute("aria-sort") == "descending"
    assert [r[first][0] for r in up] != [r[first][0] for r in down] or len(set(keys)) == 1
    assert sorted(before) == sorted(r[first][0] for r in down)  # the same rows, reordered


def bars(b, scope: str = "#leaderboard") -> dict[str, tuple]:
    got = js(b, """return Array.from(document.querySelectorAll(arguments[0] + ' svg.interval-bars g.bar'))
        .map(g => [g.dataset.label, g.dataset.value, g.dataset.low, g.dataset.high, g.getAttribute('class')]);""",
             scope)
    return {label: (float(v), float(lo), float(hi), cls) for label, v, lo, hi, cls in got}


# --- without a browser -----------------------------------------------------------------------------------------

def test_every_kind_is_detected_and_written(pages):
    for kind, path in pages.items():
        text = path.read_text(encoding="utf-8")
        assert f'data-kind="{kind}"' in text, kind
        assert not NETWORK.search(text), (kind, NETWORK.search(text))
        assert "http://" not in text and "https://" not in text


def test_commands_write_report_html_beside_their_report(dirs):
    for kind in KINDS:
        assert (dirs[kind] / "report.html").is_file(), kind
        for results in dirs[kind].glob("**/results.json"):  # every run of a series has its own page too
            assert (results.parent / "report.html").is_file(), results.parent


def test_the_page_is_deterministic_and_the_runs_own_page_is_the_report_commands(dirs, tmp_path):
    for kind in ("run", "suite"):
        a, b = tmp_path / f"{kind}-a.html", tmp_path / f"{kind}-b.html"
        _ok(["report", str(dirs[kind]), "--html", str(a)])
        _ok(["report", str(dirs[kind]), "--html", str(b)])
        assert a.read_bytes() == b.read_bytes()
    own = (dirs["run"] / "report.html").read_bytes()
    _ok(["report", str(dirs["run"]), "--html", str(dirs["run"] / "report.html")])
    assert (dirs["run"] / "report.html").read_bytes() == own


def test_several_runs_make_the_compare_page_and_mixed_kinds_are_refused(dirs, tmp_path, capsys):
    runs = [job(dirs["compare"], "gru-s0"), job(dirs["compare"], "copy_last-s0")]
    _ok(["report", *map(str, runs), "--html", str(tmp_path / "two.html")])
    _ok(["report", str(dirs["compare"]), "--html", str(tmp_path / "multi.html")])
    assert (tmp_path / "two.html").read_bytes() == (tmp_path / "multi.html").read_bytes()
    capsys.readouterr()
    assert main(["report", str(dirs["suite"]), str(runs[0]), "--html", str(tmp_path / "x.html")]) == 2
    assert "must all be run directories" in capsys.readouterr().err
    assert main(["report", str(tmp_path), "--html", str(tmp_path / "x.html")]) == 2
    assert not (tmp_path / "x.html").exists()


def test_strings_from_files_are_escaped(dirs, tmp_path, browser):
    """A hostile name in results.json is text on the page, never markup."""
    import shutil

    run = tmp_path / "hostile"
    shutil.copytree(dirs["run"], run)
    data = json.loads((run / "results.json").read_text())
    data["dataset"]["name"] = '<script>console.error("pwned")</script><img src="https://evil.invalid/x.png">'
    (run / "results.json").write_text(json.dumps(data))
    _ok(["report", str(run), "--html", str(tmp_path / "hostile.html")])
    browser.open(tmp_path / "hostile.html")
    assert js(browser, "return document.scripts.length") == 1 and js(browser, "return document.images.length") == 0
    assert data["dataset"]["name"] in browser.driver.title
    assert_clean(browser, tmp_path / "hostile.html")


# --- in the browser --------------------------------------------------------------------------------------------

def test_run_page(pages, dirs, browser, shots):
    r = Result.from_json(dirs["run"])
    open_page(browser, pages["run"], shots, "run")
    rows = board(browser)
    names = [r.model_name] + [n for n, _ in r.baselines_by("hit@5")]
    assert list(rows) == names
    for name in names:
        s = r.scores_of(name)
        check_scores(rows[name], r.ks, s.values, s.ci)
        assert ("baseline" in rows[name]["_class"]) == (name != r.model_name)
    model = rows[r.model_name]
    lo, hi = r.lift.interval()
    assert norm(model["lift Hit@5 pts [95% CI]"][0]) == f"{fmt.pts(r.lift.value())} [{fmt.pts(lo)}, {fmt.pts(hi)}]"
    assert model["McNemar p (Hit@5)"][0] == fmt.pvalue(r.lift.mcnemar_p())
    assert model["W/T/L"][0] == "/".join(map(str, r.lift.wtl))
    style = js(browser, """const s = sel => getComputedStyle(document.querySelector(sel));
        return [s('#leaderboard tr.baseline td').fontStyle, s('#leaderboard tr.model td').fontStyle];""")
    assert style == ["italic", "normal"]
    drawn = bars(browser)
    assert drawn[r.model_name][:3] == (r.metrics.value("hit@5"), *r.metrics.interval("hit@5"))
    assert "baseline" in drawn[names[1]][3] and "baseline" not in drawn[r.model_name][3]
    head = js(browser, "return document.querySelector('#headline').textContent")
    assert f"{r.metrics.n_queries} (test split)" in head and f"{r.pool.size} candidates" in head
    assert f"Hit@5 {fmt.pct(r.metrics.chance_at(5))} %" in head
    verdict = js(browser, "return document.querySelector('#headline li.verdict').dataset.passed")
    assert verdict == ("pass" if r.gate.passed else "fail")
    check_sorting(browser, "Hit@5 % [95% CI]")
    check_sorting(browser, "W/T/L")
    assert_clean(browser, pages["run"])


def test_run_page_charts_are_the_runs_numbers(pages, dirs, browser):
    import numpy as np

    r, h = Result.from_json(dirs["run"]), History.load(dirs["run"])
    browser.open(pages["run"])
    marker = js(browser, "return Array.from(document.querySelectorAll('#training svg g.marker'))"
                         ".map(m => +m.dataset.x)")
    assert marker == [float(h.best_epoch)] * 2
    series = js(browser, "return Array.from(document.querySelectorAll('#training g.series'))"
                         ".map(g => [g.dataset.series, g.dataset.points])")
    points = {name: json.loads(p) for name, p in series}
    assert points["train loss"] == [[float(e.epoch), e.train_loss] for e in h.epochs]
    assert points["val Hit@5"] == [[float(e.epoch), e.val["hit@5"]] for e in h.epochs]
    bins = js(browser, "return Array.from(document.querySelectorAll('#ranks g.bin'))"
                       ".map(g => [+g.dataset.lo, +g.dataset.hi, +g.dataset.count])")
    with np.load(dirs["run"] / "predictions.npz") as z:
        ranks = z["rank"]
    assert sum(c for _, _, c in bins) == len(ranks) == r.metrics.n_queries
    assert all(((ranks >= lo) & (ranks < hi)).sum() == c for lo, hi, c in bins)
    assert bins[0][:2] == [1, 2] and bins[0][2] == (ranks == 1).sum()
    cos = js(browser, "return Array.from(document.querySelectorAll('#direction svg.offsets-chart circle'))"
                      ".map(c => [+c.dataset.x, +c.dataset.y])")
    row = r.diagnostics.rows[r.model_name].by_offset()
    assert cos == [[k, row[k]] for k in r.diagnostics.offsets if row.get(k) is not None]
    links = js(browser, "return Array.from(document.querySelectorAll('#artefacts a')).map(a => a.href)")
    assert any(u.endswith("/results.json") for u in links) and all(u.startswith("file://") for u in links)
    assert all(Path(u[len("file://"):]).exists() for u in links)
    assert js(browser, "return document.querySelector('#details').open") is False


def test_every_gateable_metric_is_on_the_run_page(pages, dirs, browser):
    from lvmbench.evaluate import metrics

    r = Result.from_json(dirs["run"])
    browser.open(pages["run"])
    rows = {row["predictor"][0]: row for row in rows_of(browser, "#metrics table")}
    assert set(rows) == {r.model_name, *r.baselines}
    gateable = [k for k in metrics.keys(r.ks, vectors=True) if metrics.parse_key(k)[0].gate]
    for name, row in rows.items():
        s = r.scores_of(name)
        for key in gateable:
            m, k = metrics.parse_key(key)
            cell = row[m.heading(k) + (" %" if key.startswith("hit@") else "")]
            assert float(cell[1]) == s.value(key), (name, key)


def test_compare_page(pages, dirs, browser, shots):
    gru = Result.from_json(job(dirs["compare"], "gru-s0"))
    open_page(browser, pages["compare"], shots, "compare")
    rows = board(browser)
    assert set(rows) == {"gru", *gru.baselines}
    for name, row in rows.items():
        s = gru.scores_of(name)
        check_scores(row, gru.ks, s.values, s.ci, mrr_ci=False)
        assert ("baseline" in row["_class"]) == (name != "gru")
    assert "the run's model" in rows["copy_last"]["kind"][0]
    assert rows["gru"]["W/T/L"][0] == "/".join(map(str, gru.lift.wtl))
    hits = [float(r["Hit@5 % [95% CI]"][1]) for r in rows.values()]
    assert hits == sorted(hits, reverse=True)  # compare's order: best first
    check_sorting(browser, "lift Hit@5 pts [95% CI]")
    assert_clean(browser, pages["compare"])


def test_suite_page(pages, dirs, browser, shots):
    suite = json.loads((dirs["suite"] / "suite.json").read_text())
    ks = suite["recipe"]["eval"]["ks"]
    open_page(browser, pages["suite"], shots, "suite")
    rows = board(browser)
    assert list(rows) == suite["tasks"]
    for task in suite["rows"]:
        row = rows[task["task"]]
        cis = {k: task[f"{k}_ci"] for k in [f"hit@{k}" for k in ks] + ["mrr"]}
        check_scores(row, ks, task, cis)
        assert row["Holm p"][0] == fmt.pvalue(task["vs_best"]["holm_p"])
        assert row["best baseline"][0] == task["best_baseline"]
        run = Result.from_json(dirs["suite"] / task["runs"][0]["run_dir"])
        assert run.metrics.value("hit@5") == task["hit@5"]  # one run per task: the suite's number is the run's
        scope = f'details.group[data-group="{task["task"]}"]'
        drill = board(browser, scope)
        assert list(drill)[0] == suite["model"]
        for name, b in task["baselines"].items():
            check_scores(drill[name], ks, b, {k: b[f"{k}_ci"] for k in cis})
            assert "baseline" in drill[name]["_class"]
        assert bars(browser)[f'{task["task"]}: {suite["model"]}'][0] == task["hit@5"]
    assert js(browser, "return document.querySelectorAll('#headline li.verdict').length") == len(suite["rows"])
    assert js(browser, "return document.querySelector('details.group').open") is False
    check_sorting(browser, "Hit@5 % [95% CI]")
    js(browser, "document.querySelectorAll('details').forEach(d => d.open = true)")
    browser.screenshot(shots / "report_suite_open.png")
    assert_clean(browser, pages["suite"])


def _check_pooled(browser, summary: dict, ks: list[int]) -> None:
    rows = board(browser)
    for s in summary["rows"]:
        check_scores(rows[s["model"]], ks, s, {k: s[f"{k}_ci"] for k in [f"hit@{k}" for k in ks] + ["mrr"]})
        vs = s["vs_best"]
        lo, hi = vs["lift_ci_hit@5"]
        assert norm(rows[s["model"]]["lift Hit@5 pts [95% CI]"][0]) == f"{fmt.pts(vs['hit@5'])} [{fmt.pts(lo)}, {fmt.pts(hi)}]"
    for name, b in summary["rows"][0]["baselines"].items():
        assert float(rows[name]["Hit@5 % [95% CI]"][1]) == b["hit@5"] and "baseline" in rows[name]["_class"]


def _spread(browser) -> list[tuple]:
    return js(browser, "return Array.from(document.querySelectorAll('figure.spread g.bar'))"
                       ".map(g => [g.dataset.label, +g.dataset.value])")


def test_cv_page(pages, dirs, browser, shots):
    cv = json.loads((dirs["cv"] / "cv.json").read_text())
    open_page(browser, pages["cv"], shots, "cv")
    _check_pooled(browser, cv, cv["recipe"]["eval"]["ks"])
    folds = [Result.from_json(dirs["cv"] / r["run_dir"]).metrics.value("hit@5") for r in cv["runs"]]
    assert folds == cv["rows"][0]["folds"]["hit@5"]
    assert _spread(browser) == [[f"fold {r['fold']}", h] for r, h in zip(cv["runs"], folds)]
    assert js(browser, "return document.querySelectorAll('figure.curves').length") == 3
    check_sorting(browser, "MRR [95% CI]")
    assert_clean(browser, pages["cv"])


def test_seeds_page(pages, dirs, browser, shots):
    seeds = json.loads((dirs["seeds"] / "seeds.json").read_text())
    open_page(browser, pages["seeds"], shots, "seeds")
    _check_pooled(browser, seeds, seeds["ks"])
    spread = seeds["rows"][0]["seed_spread"]["hit@5"]
    assert [v for _, v in _spread(browser)] == spread
    assert [label for label, _ in _spread(browser)] == ["gru seed 0", "gru seed 1"]
    check_sorting(browser, "Hit@1 % [95% CI]")
    assert_clean(browser, pages["seeds"])


def test_sweep_page(pages, dirs, browser, shots):
    sweep = json.loads((dirs["sweep"] / "sweep.json").read_text())
    open_page(browser, pages["sweep"], shots, "sweep")
    rows = board(browser)
    for p in sweep["points"]:
        m = p["metrics"]
        check_scores(rows[str(p["context"])], sweep["ks"], m, m["ci"])
    ref = sweep["reference"]
    check_scores(rows[ref["name"]], sweep["ks"], ref["metrics"], ref["metrics"]["ci"])
    assert "baseline" in rows[ref["name"]]["_class"]
    trend = js(browser, "return Array.from(document.querySelectorAll('#trend g.series'))"
                        ".map(g => JSON.parse(g.dataset.points))")
    assert trend[0] == [[float(p["context"]), p["metrics"]["hit@5"]] for p in sweep["points"]]
    checks = js(browser, "return Array.from(document.querySelectorAll('#headline li.verdict'))"
                         ".map(li => li.dataset.passed)")
    assert checks[:3] == ["pass"] * 3
    check_sorting(browser, "Hit@10 % [95% CI]")
    assert_clean(browser, pages["sweep"])


def test_every_page_fits_the_window_and_its_screenshot_is_kept(pages, browser, shots):
    for kind in KINDS:
        browser.open(pages[kind])
        assert js(browser, "return document.documentElement.scrollWidth") <= 1280, kind
        assert js(browser, "return document.querySelectorAll('svg.chart').length") >= 2, kind
        shot = browser.screenshot(shots / f"report_{kind}.png")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
        assert_clean(browser, pages[kind])
