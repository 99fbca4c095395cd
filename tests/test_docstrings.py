"""The examples in the package's docstrings run and print what they show."""

from __future__ import annotations

import doctest

import pytest

import lrcore
import lrcore.gradients


@pytest.mark.parametrize("module", [lrcore, lrcore.gradients], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    if module is lrcore:
        assert result.attempted > 0
