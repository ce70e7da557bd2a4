"""Build a chain store from real text: one document = one chain.

Sources (``sources``)
    ``SRC`` is a folder or a JSONL file.  A folder is walked for ``.txt``,
    ``.md``/``.markdown``, ``.rst`` and ``.html``/``.htm`` files, each also
    accepted gzip-compressed (``foo.html.gz``); hidden files and folders are
    skipped; documents are taken in sorted relative-path order (POSIX
    separators), so a build is deterministic.  ``--include``/``--exclude`` are
    shell globs (``fnmatch``, ``*`` crosses ``/``) matched against the relative
    path with and without its ``.gz``.  A JSONL file holds one document per
    line, ``{"id", "title", "paragraphs": [...]}``, taken in line order with
    the paragraphs used as given (only whitespace is normalised).  A file
    whose content is binary (a NUL byte or many control characters in its
    first 8 KiB) is skipped and counted (``skipped_binary_files``); one that
    is not valid UTF-8 is read as Latin-1 and counted (``documents_not_utf8``);
    the report lists the first few names of each.

Paragraph units (``formats``; the order inside a document is kept exactly)
    Each format has its own parser module, whose docstring says what one unit
    is and what is removed: ``formats.html`` (text between block-level tags;
    navigation, code, tables and headings removed; only the main region when
    the page has one), ``formats.markdown`` and ``formats.rst``
    (blank-line-separated blocks, one unit per list item; code, tables,
    headings and non-prose directives removed; inline markup keeps its text)
    and ``formats.text`` (blank-line-separated blocks).  The first heading
    (HTML: the first ``<h1>``) becomes the title.  ``formats`` holds the
    registry: a new format is one module plus one ``register_format`` line.

Sentence units (``--unit sentence``; ``textutils.split_sentences``)
    Each paragraph is split after ``.``, ``!``, ``?`` or ``…`` (plus any
    closing quotes/brackets) followed by whitespace and an upper-case letter,
    digit, quote or bracket - except after a single letter or one of a few
    abbreviations (``e.g.``, ``i.e.``, ``cf.``, ``vs.``, ``Mr.``, ``Dr.``,
    ``Fig.``, ``No.``...).  No language model, no nltk.

Filters, in this order (``select``; all counted in the report and the manifest)
    1. units longer than ``max_unit_chars`` characters (default 4,000) go,
       counted as ``dropped_long_units`` (``select`` says why they are
       dropped, not split), then units with fewer than ``min_words``
       whitespace-separated words;
    2. documents with fewer than ``min_paragraphs`` units go (``min_paragraphs``
       counts units, sentences in sentence mode), and with ``max_paragraphs``
       set, documents with more units than that go too (a compute budget: the
       recurrent models' cost grows with the context length a document allows);
    3. ``max_docs`` keeps the first N remaining documents;
    4. a unit text (whitespace-normalised, case-sensitive) that occurs in two
       or more of the kept documents is boilerplate: every occurrence goes;
       repeats inside one document stay;
    5. documents that fell below ``min_paragraphs`` through step 4 go;
    6. after encoding (``build.drop_shared_vectors``), a unit whose stored
       vector - the row as written, after the float16 cast - occurs in two or
       more of the kept documents goes, every occurrence; repeats inside one
       document stay.  Texts that differ only in case or spacing
       (``int f(int fd)`` / ``int f (int fd)``) encode to one MiniLM vector,
       which step 4 cannot see and the leakage check of ``lvmbench run``
       refuses (it compares the stored rows bit for bit);
    7. documents that fell below ``min_paragraphs`` through step 6 go
       (``max_docs`` is not re-applied).
    A dry run stops before encoding: it reports steps 1-5 only, so its kept
    counts are an upper bound.

Encoding cache (``encoding``)
    Vectors are cached per document in ``<out>.cache/`` (or ``cache_dir``)
    as ``<sha256(encoder id + unit texts)>.npy`` float32 files written
    atomically, so an interrupted build resumes where it stopped and a
    rebuild with other filters re-encodes only what changed.  The default
    cache is deleted after a successful build; an explicit ``cache_dir`` is
    kept.  It holds each document's units as steps 1-5 left them; what steps
    6-7 drop afterwards never changes it.

Output (``build``, ``texts``)
    A chain store (``write_store``) plus ``texts.jsonl.gz``: one line per chain,
    ``{"id", "title", "units": [...]}``, whose sha256 is in the manifest, so
    every vector can be traced to its text (``load_texts``).  The manifest's
    ``counts`` hold every filter's count (steps 6-7:
    ``removed_duplicate_vectors``, ``duplicate_vector_values``,
    ``dropped_short_documents_after_vector_dedup``).  A store made some other
    way can be given the same vector rule with ``lvmbench data dedupe``
    (``lvmbench.data.dedupe``).

The command line (``lvmbench data build``) lives in ``lvmbench.cli.corpus``;
this package takes a :class:`BuildOptions` and never sees argparse.
"""

from lvmbench.data.corpus.build import CORPUS_VERSION, BuildOptions, build_corpus, drop_shared_vectors, stored_vectors
from lvmbench.data.corpus.document import Document
from lvmbench.data.corpus.encoding import encode_documents
from lvmbench.data.corpus.formats import Format, available_formats, format_for, register_format
from lvmbench.data.corpus.formats.html import parse_html
from lvmbench.data.corpus.formats.jsonl import read_jsonl
from lvmbench.data.corpus.formats.markdown import parse_markdown
from lvmbench.data.corpus.formats.rst import parse_rst
from lvmbench.data.corpus.formats.text import parse_text
from lvmbench.data.corpus.report import format_report
from lvmbench.data.corpus.select import scan_corpus, select_units
from lvmbench.data.corpus.sources import discover, load_documents, read_document
from lvmbench.data.corpus.texts import TEXTS, iter_units, load_texts
from lvmbench.data.corpus.textutils import n_words, normalise_ws, split_sentences

__all__ = [
    "CORPUS_VERSION", "TEXTS", "BuildOptions", "Document", "Format", "available_formats", "build_corpus", "discover",
    "drop_shared_vectors", "encode_documents", "format_for", "format_report", "iter_units", "load_documents",
    "load_texts", "n_words", "normalise_ws", "parse_html", "parse_markdown", "parse_rst", "parse_text",
    "read_document", "read_jsonl", "register_format", "scan_corpus", "select_units", "split_sentences",
    "stored_vectors",
]
