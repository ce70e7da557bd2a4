"""The documentation site: the generated CLI reference is current, and ``mkdocs build --strict`` passes."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lvmbench.cli import build_parser
from lvmbench.cli import reference

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "reference" / "cli.md"


def test_committed_cli_reference_is_what_the_parser_generates():
    found = reference.check(PAGE)
    assert found is None, found  # the message ends with the command that regenerates the page
    assert PAGE.read_text(encoding="utf-8") == reference.render()


@pytest.fixture
def page(tmp_path) -> Path:
    """The page as the parser generates it now (the committed one is checked above, against the same generator)."""
    path = tmp_path / "cli.md"
    path.write_text(reference.render(), encoding="utf-8")
    return path


def test_check_names_a_flag_added_without_regenerating(page):
    """Not vacuous: a parser with one more flag than the page is caught, and the flag named."""
    parser = build_parser()
    assert reference.check(page, parser) is None
    reference.find_parser(parser, "data", "build").add_argument("--brand-new-flag", help="added by the test")
    found = reference.check(page, parser)
    assert found is not None and len(found.splitlines()) == 1
    assert "--brand-new-flag" in found and "`lvmbench data build`" in found and "missing" in found
    assert reference.REGENERATE in found


def test_check_names_a_subcommand_added_without_regenerating(page):
    parser = build_parser()
    suite_sub = next(a for a in reference.find_parser(parser, "suite")._actions
                     if a.__class__.__name__ == "_SubParsersAction")
    suite_sub.add_parser("brand-new", help="added by the test")
    assert "command `lvmbench suite brand-new` is missing" in reference.check(page, parser)


def test_check_command_line_exits_1_with_one_line(page, tmp_path, capsys):
    assert reference.main(["--check", str(page)]) == 0
    stale = tmp_path / "stale.md"
    stale.write_text("".join(line for line in page.read_text(encoding="utf-8").splitlines(keepends=True)
                             if not line.startswith("| `--overwrite`")), encoding="utf-8")
    capsys.readouterr()
    assert reference.main(["--check", str(stale)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0] and "missing" in err[0] and reference.REGENERATE in err[0]


def test_render_does_not_depend_on_the_terminal_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    narrow = reference.render()
    monkeypatch.setenv("COLUMNS", "250")
    assert reference.render() == narrow


def test_mkdocs_build_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip('mkdocs is not installed: pip install -e ".[docs]"')
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").is_file()
    assert (tmp_path / "site" / "concepts" / "metrics" / "index.html").is_file()
