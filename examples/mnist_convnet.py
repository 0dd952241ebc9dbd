"""The convnet the seed course ends on (Keras's MNIST example), as a backprop-toolkit model.

    input 28×28×1 → Conv2D(32, 3×3, relu) → MaxPooling2D(2×2) → Conv2D(64, 3×3, relu)
    → MaxPooling2D(2×2) → Flatten → Dropout(0.5) → Dense(10, softmax), categorical cross-entropy

The second pool sees an 11×11 map and gives 5×5, dropping the last row and column, as
Keras's pooling does. No training data is needed to derive, generate or check it:

    backprop derive examples/mnist_convnet.py     # each layer's backward rule, as SymPy derives it
    backprop check examples/mnist_convnet.py      # the kernel against JAX, the closed form and FD
    backprop report examples/mnist_convnet.py     # the derivation, in report/report.pdf
    backprop codegen examples/mnist_convnet.py    # the kernel (--target jax too)
"""

from derive import network
from derive.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D

model = network(
    (28, 28, 1),
    layers=[
        Conv2D(32, 3, activation="relu"),
        MaxPool2D(2),
        Conv2D(64, 3, activation="relu"),
        MaxPool2D(2),
        Flatten(),
        Dropout(0.5),
        Dense(10, activation="softmax"),
    ],
    loss="cce",
)

if __name__ == "__main__":
    from numeric.verification.tensor_check import check_tensor_network

    print(check_tensor_network(model).report())
