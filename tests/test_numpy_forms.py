"""The measured NumPy spellings of a kernel's helpers compute their SymPy definitions.

The oracle is the helper's SymPy definition evaluated with mpmath at 500 digits (enough
for 1 + exp(-1000)), never the helper's formula; inputs reach the overflow regions (|u| up
to 1000), where a fast spelling could warn or return nan.
"""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from numeric.generator.numpy_forms import HELPERS

u = sp.Symbol("u", real=True)
DEFINITIONS = {"sigmoid": 1 / (1 + sp.exp(-u)), "softplus": sp.log(1 + sp.exp(u))}
RTOL = {"float64": 1e-14, "float32": 1e-6}


def _helper(name):
    namespace = {"np": np}
    exec(HELPERS[name], namespace)  # the helper's source, as a kernel module defines it
    return namespace[name]


def _exact(name, values) -> np.ndarray:
    with mpmath.workdps(500):
        f = sp.lambdify(u, DEFINITIONS[name], "mpmath")
        return np.array([float(f(mpmath.mpf(float(v)))) for v in values])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(HELPERS))
@settings(max_examples=25, deadline=None)
@given(values=st.lists(st.floats(-1000, 1000), min_size=1, max_size=20))
def test_helper_matches_its_sympy_definition_without_warning(name, dtype, values):
    x = np.array(values + [0.0, -1000.0, 1000.0, 1e-30, -750.0, 90.0], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning from a kernel is a defect
        got = _helper(name)(x)
    assert got.dtype == x.dtype and got.shape == x.shape
    exact = _exact(name, x)
    tiny = np.finfo(dtype).tiny  # a result below the smallest normal number may round to 0
    bound = RTOL[dtype] * np.abs(exact) + tiny
    assert np.all(np.abs(got.astype(np.float64) - exact) <= bound), (x, got, exact)


@pytest.mark.parametrize("name", sorted(HELPERS))
def test_helper_takes_a_number_as_well_as_an_array(name):
    assert float(_helper(name)(0.5)) == pytest.approx(float(_exact(name, [0.5])[0]), rel=1e-15)


def test_a_wrong_spelling_is_caught():
    """The oracle is not the helper: a sigmoid spelled (1 + tanh(u/2))/2 loses the relative
    accuracy of its tiny values and fails the same comparison."""
    x = np.array([-40.0, -30.0])
    wrong = (1 + np.tanh(x / 2)) / 2
    exact = _exact("sigmoid", x)
    assert not np.all(np.abs(wrong - exact) <= RTOL["float64"] * np.abs(exact))
