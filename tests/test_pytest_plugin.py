"""The ``gradcheck`` fixture, run inside a throwaway pytest session (``pytester``)."""

from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]

# Installed (pip install -e .), the entry point loads the plugin; from a bare checkout, -p does.
INSTALLED = any(ep.value == "numeric.pytest_plugin" for ep in entry_points(group="pytest11"))
PLUGIN = () if INSTALLED else ("-p", "numeric.pytest_plugin")

USER_TESTS = """
import numpy as np

def loss(p):
    return float(np.sum(np.sin(p["w"])) * p["b"])

def right(p):
    return {"w": np.cos(p["w"]) * p["b"], "b": np.array(np.sum(np.sin(p["w"])))}

def wrong(p):
    return {"w": -np.cos(p["w"]) * p["b"], "b": np.array(np.sum(np.sin(p["w"])))}

PARAMS = {"w": np.array([0.1, 0.7, -1.2]), "b": np.array(1.5)}

def test_right(gradcheck):
    gradcheck(loss, right, PARAMS)

def test_wrong(gradcheck):
    gradcheck(loss, wrong, PARAMS)

def test_check_returns_the_result_without_failing(gradcheck):
    result = gradcheck.check(loss, wrong, PARAMS)
    assert not result.ok and result.finding("w").hint.kind == "sign"
"""


@pytest.fixture
def run(pytester):
    pytester.makepyfile(test_user=USER_TESTS)

    def run(*args):
        return pytester.runpytest(*PLUGIN, "-p", "no:cacheprovider", *args)

    return run


def test_right_gradient_passes_and_wrong_fails_with_the_report(run):
    result = run()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*gradient check FAILED: 3 of 4 entries wrong*",
            "*hint: analytic = -1 × numeric: a sign flip*",
            "*rerun: pytest 'test_user.py::test_wrong'*",
        ]
    )
    assert "Traceback" not in result.stdout.str()  # the report, not the checker's insides


def test_options_force_mode_and_seed_into_the_rerun_line(run):
    result = run("--gradcheck-mode=fast", "--gradcheck-seed=7", "-k", "wrong")
    result.stdout.fnmatch_lines(
        [
            "*fast mode, float64, seed 7*",
            "*rerun: pytest 'test_user.py::test_wrong' --gradcheck-seed=7*",
        ]
    )


def test_options_are_documented_in_help(run):
    run("--help").stdout.fnmatch_lines(["*--gradcheck-seed*", "*--gradcheck-mode*"])
