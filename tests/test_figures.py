"""The README's and docs' tables are what the committed results give
(`make figures` writes them; scripts/figures.py)."""

import importlib.util

from conftest import ROOT

spec = importlib.util.spec_from_file_location("figures", ROOT / "scripts" / "figures.py")
figures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(figures)


def test_every_table_is_what_its_results_give():
    stale = figures.stale()
    assert stale == [], f"{[str(p.relative_to(ROOT)) for p in stale]}: run `make figures`"


def test_each_block_is_placed_once_and_a_typed_change_is_caught(tmp_path):
    placed = [
        m.group(2) for path in figures.DOCS for m in figures.MARKER.finditer(path.read_text())
    ]
    assert sorted(placed) == sorted(set(placed))  # one figure per configuration, one place
    assert set(placed) == set(figures.BLOCKS)  # every block is shown somewhere
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- figures:pipeline -->")
    row = readme.index("| emotion-edge, as fast as it goes", start)
    typed = tmp_path / "README.md"
    typed.write_text(readme[:row] + readme[row:].replace(" | ", " | 1", 1))  # a hand edit
    assert figures.stale([typed]) == [typed]
