"""A network with an activation of your own: swish, g(x) = x σ(x), registered once.

    Dense(16, swish) → Dense(8, tanh) → Dense(3, softmax), categorical cross-entropy

``derive.register_activation`` takes the definition alone; its derivative, the kernel lines,
the JAX reference and the LaTeX come from it, as for a built-in. Run it through the CLI:

    backprop derive examples/custom_activation.py
    backprop codegen examples/custom_activation.py --target jax
    backprop check examples/custom_activation.py
    backprop report examples/custom_activation.py -o report-swish
"""

import derive
from derive.layers import Dense

if "swish" not in derive.ACTIVATIONS:  # a second run in one process finds it registered
    derive.register_activation("swish", "x * sigmoid(x)", latex=r"\operatorname{swish}")

model = derive.network(
    4,
    layers=[Dense(16, "swish"), Dense(8, "tanh"), Dense(3, "softmax")],
    loss="cce",
)

if __name__ == "__main__":
    print(model.derive().gradients)
