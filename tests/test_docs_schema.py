"""The results-schema page is generated from the typed result and must be current."""

from __future__ import annotations

from pathlib import Path

from lvmbench.cli import docs_schema

PAGE = Path(__file__).resolve().parents[1] / "docs" / "concepts" / "results-schema.md"


def test_results_schema_page_is_generated_from_the_result_type():
    assert docs_schema.main(["--check", str(PAGE)]) == 0, f"regenerate: {docs_schema.REGENERATE}"


def test_every_top_level_key_of_a_result_is_on_the_page():
    import dataclasses

    from lvmbench.result import Result

    page = docs_schema.render()
    for f in dataclasses.fields(Result):
        if not f.name.startswith("_") and f.name != "extra":
            assert f"| `{f.metadata.get('key') or f.name}` |" in page, f.name
