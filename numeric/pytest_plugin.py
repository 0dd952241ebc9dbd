"""pytest plugin: a ``gradcheck`` fixture that checks a hand-written gradient in one call.

Installed with the package (entry point ``pytest11: backprop``); without installing, enable it
with ``pytest -p numeric.pytest_plugin``. In a test::

    def test_my_gradient(gradcheck):
        params = {"w": np.array([0.5, -1.0]), "b": np.array(0.1)}
        gradcheck(my_loss, my_grad, params)

On a wrong gradient the test fails with the gradient-check report (which entry, analytic vs
numeric, the hint) and a command that reruns it with the same seed. Options:
``--gradcheck-seed N`` fixes the random projections of fast mode; ``--gradcheck-mode``
forces "exact" or "fast" for every check.
"""

from __future__ import annotations

import pytest

from .gradcheck.check import GradcheckResult, check_gradients


def pytest_addoption(parser):
    group = parser.getgroup("gradcheck", "gradient checks (backprop-toolkit)")
    group.addoption(
        "--gradcheck-seed",
        type=int,
        default=None,
        help="seed for fast-mode random projections (default: fresh, reported)",
    )
    group.addoption(
        "--gradcheck-mode",
        choices=("auto", "exact", "fast"),
        default="auto",
        help="force the gradient-check mode (default: chosen by parameter count)",
    )


class GradCheck:
    """Callable behind the ``gradcheck`` fixture: ``check_gradients`` that fails the test.

    Takes the arguments of :func:`numeric.gradcheck.check.check_gradients`; returns the result.
    ``results`` keeps every result of the test, ``check`` returns one without failing.
    """

    def __init__(self, nodeid: str, seed: int | None, mode: str):
        self.nodeid = nodeid
        self.seed = seed
        self.mode = mode
        self.results: list[GradcheckResult] = []

    def check(self, loss_fn=None, grad_fn=None, params=None, **kwargs) -> GradcheckResult:
        kwargs.setdefault("seed", self.seed)
        kwargs.setdefault("mode", self.mode)
        result = check_gradients(loss_fn, grad_fn, params, **kwargs)
        self.results.append(result)
        return result

    def __call__(self, loss_fn=None, grad_fn=None, params=None, **kwargs) -> GradcheckResult:
        __tracebackhide__ = True
        result = self.check(loss_fn, grad_fn, params, **kwargs)
        if not result.ok:
            seed = f" --gradcheck-seed={result.seed}" if result.seed is not None else ""
            rerun = f"  rerun: pytest '{self.nodeid}'{seed}"
            pytest.fail(f"{result.report()}\n{rerun}", pytrace=False)
        return result


@pytest.fixture
def gradcheck(request) -> GradCheck:
    """Check a hand-written gradient: ``gradcheck(loss_fn, grad_fn, params)``.

    Fails the test with the gradient-check report when an entry is wrong.
    """
    opt = request.config.getoption
    return GradCheck(request.node.nodeid, opt("--gradcheck-seed"), opt("--gradcheck-mode"))
