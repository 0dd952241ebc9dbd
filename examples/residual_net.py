"""A residual MLP with layer norm and dropout, as a model file for the CLI.

    Dense(32, relu) → 2 × Residual(LayerNorm, Dense(64, relu), Dropout(0.1), Dense(32))
    → LayerNorm → Dense(10, softmax), categorical cross-entropy, weight decay 1e-4

Each layer's backward step is derived: a residual fork sums its two branches, layer norm's
backward cancels to its closed form, dropout multiplies by its mask over the keep
probability, weight decay adds λW to each weight's gradient. The kernels take the dropout
masks as ``masks={"M4": ..., "M8": ...}`` (none: evaluation, every dropout the identity).

    backprop derive examples/residual_net.py
    backprop codegen examples/residual_net.py --target jax
    backprop check examples/residual_net.py
    backprop report examples/residual_net.py -o report-residual
"""

import derive
from derive.layers import Dense, Dropout, LayerNorm, Residual


def block(width: int = 32, hidden: int = 64):
    return Residual(LayerNorm(), Dense(hidden, "relu"), Dropout(0.1), Dense(width))


model = derive.network(
    16,
    [Dense(32, "relu"), block(), block(), LayerNorm(), Dense(10, "softmax")],
    loss="cce",
    weight_decay=1e-4,
)

if __name__ == "__main__":
    print(model)
    print(list(model.param_shapes()))
