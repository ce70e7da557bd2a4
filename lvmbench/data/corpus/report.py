"""The printed summary of a build or a dry run: what was found, dropped and written."""

from __future__ import annotations

from typing import Any


def _stats(d: dict[str, float], keys: tuple[str, ...]) -> str:
    """'min 7, median 21, mean 30.41, ...' (0 for an empty distribution)."""
    return ", ".join(f"{k} {round(d.get(k, 0), 2):g}" for k in keys)


def _names(names: list[str], total: int) -> str:
    """'a.txt, b.md' plus '...' when only the first few of ``total`` are listed."""
    return ", ".join(names) + (", ..." if total > len(names) else "")


def _file_lines(r: dict[str, Any]) -> list[str]:
    """One line per kind of file read with a caveat (none when every file was plain UTF-8 text)."""
    lines = []
    if r.get("skipped_binary_files"):
        lines.append(f"files: {r['skipped_binary_files']} skipped as binary: "
                     f"{_names(r['skipped_binary_examples'], r['skipped_binary_files'])}")
    if r.get("documents_not_utf8"):
        lines.append(f"files: {r['documents_not_utf8']} not valid UTF-8, read as Latin-1: "
                     f"{_names(r['not_utf8_examples'], r['documents_not_utf8'])}")
    return lines


def _selection_lines(r: dict[str, Any]) -> list[str]:
    upd, wpu = r["units_per_document"], r["words_per_unit"]
    vectors = "removed_duplicate_vectors" in r  # known only after encoding: absent from a dry run
    after_vectors = (f"{r['dropped_short_documents_after_vector_dedup']} too short after vector dedup, "
                     if vectors else "")
    shared_vectors = (f", {r['removed_duplicate_vectors']} with a vector also in another document "
                      f"({r['duplicate_vector_values']} distinct vectors)" if vectors else "")
    return [
        f"source: {r['source']} ({r['source_kind']})",
        *_file_lines(r),
        f"documents: {r['documents_found']} found, {r['documents_kept']} kept "
        f"({r['dropped_short_documents']} too short, {r.get('dropped_long_documents', 0)} over --max-paragraphs, "
        f"{r['dropped_short_documents_after_dedup']} too short after "
        f"dedup, {after_vectors}{r['documents_over_max_docs']} over --max-docs)",
        f"units: {r['units_found']} found, {r['units_kept']} kept ({r.get('dropped_long_units', 0)} over "
        f"--max-unit-chars, {r['dropped_short_units']} too short, "
        f"{r['dropped_duplicate_units']} cross-document duplicates of {r['duplicate_texts']} texts{shared_vectors})",
        "units per document: " + _stats(upd, ("min", "median", "mean", "p90", "max")),
        "words per unit: " + _stats(wpu, ("min", "median", "mean", "max")),
    ]


def _encoding_lines(r: dict[str, Any]) -> list[str]:
    e = r["encoding"]
    per = f", {e['seconds_per_1000']} s per 1000" if e.get("seconds_per_1000") else ""
    return [
        f"encoder: {r['encoder']}",
        f"encoded {e['encoded']} units in {e['seconds']} s{per}; {e['from_cache']} from cache",
        f"wrote {r['documents_kept']} chains, {r['units_kept']} vectors ({r['dtype']}) to {r['out']} "
        f"({r['bytes'] / 1e6:.1f} MB), dataset sha256 {r['dataset_sha256'][:16]}…",
    ]


def format_report(report: dict[str, Any]) -> str:
    """Human-readable summary of a build, or of a dry run (no encoding, so no vector rule either)."""
    lines = _selection_lines(report)
    if "encoding" in report:
        lines += _encoding_lines(report)
    else:
        lines.append("(no encoding: units whose vector also occurs in another document are found only by a build, "
                     "so these kept counts are an upper bound)")
    return "\n".join(lines)
