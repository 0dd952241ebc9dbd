"""Hints name the shape of a gradient error from the arrays alone."""

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numeric.gradcheck import hints
from numeric.gradcheck.hints import diagnose, ratio_hint

SETTINGS = settings(max_examples=40, deadline=None)
# Numeric gradients away from zero, so every entry carries information about a ratio.
NUMERIC = hnp.arrays(
    np.float64,
    st.tuples(st.integers(2, 5), st.integers(2, 5)),
    elements=st.floats(0.1, 3.0).flatmap(lambda x: st.sampled_from([x, -x])),
)
TIGHT = 1e-9


def test_docstring_examples_run():
    assert doctest.testmod(hints).failed == 0


@pytest.mark.parametrize(
    "r, kind, words",
    [
        (-1.0, "sign", "a sign flip"),
        (2.0, "x2", "off by ×2"),
        (0.5, "x1/2", "off by ×½"),
        (-2.0, "x2", "a sign flip and off by ×2"),
        (32.0, "factor", "a missing 1/m if 32 is your batch size"),
        (1 / 32, "factor", "numeric / 32"),
        (0.731, "scale", "a constant factor"),
    ],
)
def test_ratio_hints_name_the_usual_suspects(r, kind, words):
    hint = ratio_hint(r)
    assert hint.kind == kind and words in hint.message and hint.ratio == r


def test_batch_size_turns_a_guess_into_a_statement():
    assert "batch_size = 64" in ratio_hint(64.0, batch_size=64).message
    assert "if 64 is your batch size" in ratio_hint(64.0, batch_size=32).message


@pytest.mark.parametrize(
    "r, batch_size, kind",
    [
        (16001.3, None, "scale"),  # a near-constant row: no integer, no 1/m
        (2.0, 4, "x2"),  # a missing 1/sqrt(d) with d = 4: a factor, not sse vs half_sse
        (3.0, None, "factor"),  # a missing 1/sqrt(d) with d = 9: not "a missing 1/m"
        (3.0, 8, "factor"),
        (8.0, 8, "missing_1/m"),  # only the given batch size makes it one
    ],
)
def test_a_cause_is_claimed_only_when_the_evidence_fits(r, batch_size, kind):
    hint = ratio_hint(r, batch_size)
    assert hint.kind == kind
    if kind != "missing_1/m":
        assert "the 1/m of the batch mean is missing" not in hint.message
        assert "sse" not in hint.message


@SETTINGS
@given(NUMERIC, st.sampled_from([2.0, 0.5, -1.0, 16.0]))
def test_a_constant_ratio_on_every_entry_is_named(n, r):
    hint = diagnose(r * n, n, np.ones(n.shape, bool), TIGHT)
    assert hint is not None and hint.ratio == pytest.approx(r)


@SETTINGS
@given(NUMERIC.filter(lambda n: n.shape[0] == n.shape[1]))
def test_a_transpose_is_named(n):
    n = n + 5 * np.triu(np.ones_like(n))  # surely not symmetric
    a = n.T
    fails = np.abs(a - n) > TIGHT
    hint = diagnose(a, n, fails, TIGHT)
    assert hint is not None and hint.kind == "transpose"


@SETTINGS
@given(NUMERIC, st.data())
def test_one_wrong_row_is_named_with_its_index(n, data):
    i = data.draw(st.integers(0, n.shape[0] - 1))
    a = n.copy()
    a[i] = 3 * a[i]
    hint = diagnose(a, n, a != n, TIGHT)
    assert hint.kind == "rows" and f"row [{i}]" in hint.message and hint.ratio == pytest.approx(3)


@SETTINGS
@given(NUMERIC, st.data())
def test_one_wrong_column_is_named_with_its_index(n, data):
    j = data.draw(st.integers(0, n.shape[1] - 1))
    a = n.copy()
    a[:, j] = 7.0 + np.arange(n.shape[0])  # not a ratio: just wrong
    fails = np.abs(a - n) > TIGHT
    hint = diagnose(a, n, fails, TIGHT)
    assert hint.kind == "columns" and f"column [{j}]" in hint.message


@SETTINGS
@given(NUMERIC, st.data())
def test_one_wrong_entry_is_named_with_its_index(n, data):
    i = data.draw(st.integers(0, n.shape[0] - 1))
    j = data.draw(st.integers(0, n.shape[1] - 1))
    a = n.copy()
    a[i, j] *= 1.01
    hint = diagnose(a, n, a != n, TIGHT)
    assert hint.kind == "single" and f"[{i}, {j}]" in hint.message


def test_an_all_zero_analytic_gradient_is_named():
    n = np.array([0.5, -1.0, 2.0])
    assert diagnose(np.zeros(3), n, np.ones(3, bool), TIGHT).kind == "zero"


def test_no_failures_no_hint_and_noise_has_no_shape():
    n = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert diagnose(n, n, np.zeros((2, 2), bool), TIGHT) is None
    a = n * np.array([[1.1, 0.7], [1.3, 0.9]])  # a different factor everywhere
    assert diagnose(a, n, np.ones((2, 2), bool), TIGHT) is None


def test_entries_below_tolerance_do_not_break_a_ratio():
    # A zero numeric entry tells nothing about the ratio, so it must not veto it.
    n = np.array([1.0, 0.0, -2.0, 3.0])
    hint = diagnose(-n, n, n != 0, np.full(4, 1e-9))
    assert hint.kind == "sign"
