"""Random spec strings and expressions: the parser gives a Model or a BackpropInputError,
never another exception, and never takes long (hypothesis' deadline bounds each example)."""

from datetime import timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import derive
from derive import BackpropInputError

FUZZ = settings(
    max_examples=60,
    deadline=timedelta(seconds=3),
    suppress_health_check=[HealthCheck.too_slow],
)
# what spec strings and expressions are made of, with the look-alikes that broke the parser
ALPHABET = "mlpchainogre:-=0123456789²٣ xyzJdu+*/()^.,e_ \n'\"\\"
NAMES = st.sampled_from(["x", "y", "w", "b", "dx", "J", "u", "du", "m", "ones", "np", "t"])
NUMBERS = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["1e999", "1e-400", "0.5", "10**10**10", "2**2000", "9" * 320, "0"]),
)
CALLS = st.sampled_from(["exp", "log", "sqrt", "tanh", "relu", "sigmoid", "abs", "swish"])


def _expressions():
    leaves = st.one_of(NAMES, NUMBERS)

    def grow(inner):
        binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**", "^"]), inner)
        return st.one_of(
            binary.map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(CALLS, inner).map(lambda t: f"{t[0]}({t[1]})"),
            inner.map(lambda e: f"-{e}"),
        )

    return st.recursive(leaves, grow, max_leaves=8)


def _parse_or_refuse(text: str):
    try:
        model = derive.build(text)
    except BackpropInputError:
        return None
    assert isinstance(model, derive.Model)
    return model


@FUZZ
@given(st.text(ALPHABET, max_size=30))
@example("mlp:²-3")
@example("J = 1e999*x")
@example("J = x**2 + dx**2")
def test_any_spec_text_is_a_model_or_a_clear_refusal(text):
    _parse_or_refuse(text)


@FUZZ
@given(st.sampled_from(["mlp:", "chain:", "logreg:"]), st.text("0123456789-²٣ ", max_size=12))
def test_any_sizes_are_a_model_or_a_clear_refusal(kind, sizes):
    _parse_or_refuse(kind + sizes)


@FUZZ
@given(st.one_of(st.just(""), NAMES.map(lambda n: f"{n} = ")), _expressions())
@example("", "-(x ** log(-1))")  # found by this test: complex exponent
@example("", "-(x ** relu(0))")  # found by this test: an exponent with no float value
@example("J = ", "(10**10**10 * x)")
@example("J = ", "(sqrt(-1) * x)")
def test_any_expression_is_a_model_or_a_clear_refusal(name, body):
    model = _parse_or_refuse(name + body)
    if model is not None:  # and its derivation runs too
        model.derive()
