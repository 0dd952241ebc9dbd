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


def test_select_by_masks_docstring_examples_run():
    import doctest

    from numeric.generator import numpy_forms

    assert doctest.testmod(numpy_forms).failed == 0


def test_a_branch_that_can_be_infinite_keeps_np_where():
    """a * c + b * ~c is nan where the unselected b is inf or nan (log of a negative entry);
    np.where is not, so only finite-everywhere branches are summed."""
    from numeric.generator.numpy_forms import select_by_masks
    from numeric.generator.numpy_printer import NumPyPrinter

    z = sp.Symbol("Z1", real=True)
    guarded = sp.Piecewise((z, z > 0), (sp.log(-z), True))
    assert select_by_masks(guarded) is None
    assert NumPyPrinter().doprint(guarded).startswith("np.where(")
    leaky = sp.Piecewise((z, z >= 0), (z / 100, True))
    code = NumPyPrinter().doprint(leaky)
    Z1 = np.array([-3.0, -0.0, 0.0, 2.5, -1e300, np.inf])
    with np.errstate(invalid="ignore"):
        got = eval(code, {"np": np, "Z1": Z1})  # noqa: S307  (our own printed code)
    assert np.array_equal(got[:-1], np.where(Z1 >= 0, Z1, Z1 / 100)[:-1])
