"""The release check that breaks the code on purpose (scripts/mutation_check.py):
each break still names text that is in the code, once, so it cannot rot into
a check that breaks nothing; and a break whose text is gone is reported as
not caught, never as caught."""

from pathlib import Path

from conftest import ROOT

from scripts import mutation_check


def test_every_break_still_finds_its_text_exactly_once():
    for item in mutation_check.BREAKS:
        text = (ROOT / item.path).read_text()
        assert text.count(item.old) == 1, f"{item.name}: update its text in {item.path}"
        assert item.new != item.old
        for test in item.tests:
            assert (ROOT / test.split("::")[0]).is_file(), test


def test_a_break_with_nothing_to_break_is_not_counted_as_caught(tmp_path: Path):
    (tmp_path / "module.py").write_text("value = 1\n")
    gone = mutation_check.Break("gone", "module.py", "value = 2", "value = 3", ("x.py",))
    caught, said, _ = mutation_check.check(gone, tmp_path)
    assert not caught and "exactly once" in said
