"""numeric.strategies.networks(): random layer stacks, each derived, generated and verified."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derive.layers import Dense, Dropout, LayerNorm, Residual
from numeric import strategies, verify

FEW = settings(
    max_examples=6, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@settings(max_examples=40, deadline=None, database=None)
@given(strategies.networks(max_layers=4))
def test_drawn_networks_are_well_formed(model):
    names = list(model.param_shapes())
    assert names[-2].startswith("W") and names[-1].startswith("b")
    widths = model.sizes
    assert widths[0] == model.data_shapes(1)["X"][1] and widths[-1] == model.n_outputs


@settings(max_examples=30, deadline=None, database=None)
@given(st.integers(1, 4).flatmap(lambda w: st.tuples(st.just(w), strategies.layer_stacks(w))))
def test_residuals_keep_their_width(drawn):
    width, stack = drawn

    def check(layers, width):
        for layer in layers:
            if isinstance(layer, Residual):
                assert check(layer.layers, width) == width
            else:
                assert isinstance(layer, Dense | LayerNorm | Dropout)
                width = layer.width(width)
        return width

    check(stack, width)


@FEW
@given(strategies.networks(max_layers=3, max_width=3), st.integers(0, 2**16))
def test_every_drawn_network_passes_the_verification(model, seed):
    result = verify(model, batch=4, seed=seed)
    assert result.ok, result.report()
