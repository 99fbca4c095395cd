"""The documentation pages that are partly generated, or that name files and commands, are current."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrcore import _stubs
from lrcore._rules import RULES, documentation_table

ROOT = Path(__file__).resolve().parent.parent
RULES_PAGE = ROOT / "docs" / "rules.md"

pytestmark = pytest.mark.skipif(not RULES_PAGE.exists(), reason="needs a source checkout (docs/)")


def test_rules_page_table_is_the_generated_one():
    page = RULES_PAGE.read_text(encoding="utf-8")
    assert page.count(_stubs.TABLE_BEGIN) == 1 and page.count(_stubs.TABLE_END) == 1
    inside = page.split(_stubs.TABLE_BEGIN)[1].split(_stubs.TABLE_END)[0]
    assert inside.strip() == documentation_table(), (
        "docs/rules.md is stale: run `python -m lrcore._stubs --write --docs docs/rules.md`")
    assert _stubs.with_rules_table(page) == page


def test_table_refresh_replaces_only_the_table():
    page = f"# Title\n\nbefore\n{_stubs.TABLE_BEGIN}\n| old | table |\n{_stubs.TABLE_END}\nafter\n"
    refreshed = _stubs.with_rules_table(page)
    assert refreshed.startswith("# Title\n\nbefore\n" + _stubs.TABLE_BEGIN + "\n")
    assert refreshed.endswith(_stubs.TABLE_END + "\nafter\n")
    assert "| old | table |" not in refreshed and documentation_table() in refreshed
    with pytest.raises(ValueError, match="markers"):
        _stubs.with_rules_table("# no table here\n")


def test_files_the_rules_page_names_exist():
    page = RULES_PAGE.read_text(encoding="utf-8")
    for relative in ["cpp/include/lrcore/config.hpp", "cpp/include/lrcore/tensors.hpp",
                     "cpp/src/kernels/step_constants.hpp", "cpp/src/kernels/update_rules.hpp",
                     "cpp/src/kernels/kernel_table.hpp", "cpp/include/lrcore/optimizers.hpp",
                     "cpp/src/optimizers.cpp", "cpp/src/rules.hpp", "src/lrcore/cpp.pxd",
                     "src/lrcore/_rules.py", "src/lrcore/optim/_classes.py", "src/lrcore/reference.py",
                     "src/lrcore/_core.pyi", "tests/rules.py", "tests/test_properties.py"]:
        assert f"`{relative}`" in page, relative
        assert (ROOT / relative).exists(), relative


def test_readme_links_the_rules_page_and_lists_every_class():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/rules.md)" in readme
    for rule in RULES.values():
        assert rule.class_name in readme and rule.name in readme
