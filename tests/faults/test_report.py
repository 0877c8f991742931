"""The reliability report mechanism: rows recorded by tests, rendered between the README's markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig import reliability


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "results"
    monkeypatch.setenv("FLYTEAUTH_RELIABILITY_DIR", str(folder))
    return folder


def test_rows_table_keeps_the_last_row_per_key(results: Path) -> None:
    reliability.record("races", {"case": "two kernels", "refreshes": 3}, title="Races", note="Measured.")
    reliability.record("races", {"case": "two kernels", "refreshes": 1})
    reliability.record("races", {"case": "file cache", "refreshes": 1})
    text = reliability.render(reliability.load())
    assert "#### Races" in text and "Measured." in text
    assert "| two kernels | 1 |" in text and "| file cache | 1 |" in text and "| 3 |" not in text


def test_matrix_layout_pivots_case_by_path(results: Path) -> None:
    for case, path, outcome in [("refused", "device", "TransportError 0.1 s"), ("refused", "metadata", "x"),
                                ("hang", "device", "TransportTimeoutError 1 s")]:
        reliability.record("faults", {"case": case, "path": path, "outcome": outcome}, matrix=("case", "path", "outcome"))
    text = reliability.render(reliability.load())
    assert "| case | device | metadata |" in text
    assert "| hang | TransportTimeoutError 1 s | — |" in text


def test_readme_section_is_replaced_between_the_markers(results: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# T\n\nbefore\n{reliability.BEGIN}\nold\n{reliability.END}\nafter\n")
    reliability.record("t", {"a": 1, "b": 2.345})
    assert reliability.main(["--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old" not in text and "| 1 | 2.35 |" in text and text.endswith("after\n") and "before" in text


def test_bad_table_names_are_refused(results: Path) -> None:
    with pytest.raises(ValueError):
        reliability.record("../x", {"a": 1})


def test_rules_render_one_section_per_rule(results: Path) -> None:
    reliability.record_rule("Hostile configuration files give one sentence", "non-UTF-8 file", "ConfigurationError")
    reliability.record_rule("Hostile configuration files give one sentence", "a directory", "ConfigurationError")
    reliability.record_rule("The scanner finds every form", "markdown bearer", "found")
    reliability.record_rule("Hostile configuration files give one sentence", "non-UTF-8 file", "ConfigurationError, 1 line")
    reliability.record("other", {"a": 1}, order=90)
    text = reliability.render(reliability.load())
    assert text.index("#### Rules the suite checks") < text.index("#### other")
    section = text.split("#### other")[0]
    assert section.count("**Hostile configuration files give one sentence**") == 1
    assert section.count("| case | outcome |") == 2 and "| rule |" not in section
    assert "| non-UTF-8 file | ConfigurationError, 1 line |" in section and "| ConfigurationError |" not in section.split(
        "**The scanner")[0].split("| a directory")[0]
    assert section.index("**Hostile") < section.index("| a directory |") < section.index("**The scanner finds every form**")


def test_group_must_name_a_column(results: Path) -> None:
    with pytest.raises(ValueError):
        reliability.record("t", {"a": 1}, group="b")


def test_the_output_target_is_one_constant(results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "reliability.md"  # e.g. a page of the docs site
    page.write_text(f"{reliability.BEGIN}\n{reliability.END}\n")
    monkeypatch.setattr(reliability, "TARGET", page)
    reliability.record("t", {"a": 1, "b": 2})
    assert reliability.main([]) == 0
    assert "| 1 | 2 |" in page.read_text()


def test_tables_without_records_are_kept_as_the_target_shows_them(results: Path, tmp_path: Path) -> None:
    """A fresh checkout that ran only some tests must not wipe the other tables (written before markers)."""
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n{reliability.BEGIN}\n#### Fault matrix\n\n| case | a |\n|---|---|\n| refused | E |\n\n"
                      f"#### Races\n\nMeasured.\n\n| case | n |\n|---|---|\n| two | 1 |\n{reliability.END}\ny\n")
    reliability.record("races", {"case": "two", "n": 2}, title="Races", order=20)
    reliability.record_rule("Rule one", "case one", "ok")
    assert reliability.main(["--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "| refused | E |" in text and "| two | 2 |" in text and "| two | 1 |" not in text
    assert text.index("#### Fault matrix") < text.index("#### Races") < text.index("#### Rules the suite checks")
    assert text.count("<!-- reliability:table ") == 3
    # a second run changes nothing; --fresh drops what has no records
    assert reliability.main(["--readme", str(readme)]) == 0 and readme.read_text() == text
    assert reliability.main(["--readme", str(readme), "--fresh"]) == 0
    assert "#### Fault matrix" not in readme.read_text() and "#### Races" in readme.read_text()
