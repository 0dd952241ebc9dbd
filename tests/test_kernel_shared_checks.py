"""What numeric's kernel module shares with training and verification: ``load`` of something
that is no path (a network, a Model: a kernel not made yet) is one TypeError pointing to
``numeric.codegen``; the dropout masks a dense model and a tensor network take (one function
for the kernel's call check, ``train`` and ``verify``); data that is not finite is named
in the same words by a kernel call and by ``numeric.verify``."""

from __future__ import annotations

import numpy as np
import pytest

import derive
import numeric
from derive.layers import Dense, Dropout
from derive.tensor_layers import Conv2D, Flatten
from derive.tensor_network import tensor_network
from numeric.generator.kernel import Kernel, mask_shapes

NOT_PATHS = {
    "TensorNetwork": lambda: tensor_network((6, 6, 1), [Conv2D(2, 3), Flatten(), Dense(2)], "mse"),
    "Model": lambda: derive.mlp([3, 2]),
    "Derivation": lambda: derive.mlp([3, 2]).derive(),
    "NoneType": lambda: None,
}


@pytest.mark.parametrize("got", NOT_PATHS)
def test_load_of_what_is_no_path_names_it_and_points_to_codegen(got):
    given = NOT_PATHS[got]()
    for function, call in (("load", numeric.load), ("Kernel.from_file", Kernel.from_file)):
        with pytest.raises(TypeError) as info:
            call(given)
        message = str(info.value)
        assert message.startswith(
            f"{function} takes the path of a saved kernel file, got {got}: "
        ), message
        assert "numeric.codegen(net)" in message and "numeric.codegen(model.derive())" in message


def test_load_still_takes_a_str_and_a_path(tmp_path):
    kernel = numeric.codegen(derive.mlp([3, 2]).derive())
    path = kernel.save(tmp_path / "mlp.py")
    assert numeric.load(str(path)).PARAMS == numeric.load(path).PARAMS == kernel.params


def test_the_masks_of_a_dense_model_are_its_dropout_widths_and_keeps():
    model = derive.network(4, [Dense(5, "relu"), Dropout(0.25), Dense(6), Dropout(0), Dense(3)],
                           "mse")  # fmt: skip
    masks = mask_shapes(model)
    assert masks == {"M2": ((5,), 0.75), "M4": ((6,), 1.0)}
    assert all(type(n) is int for shape, _ in masks.values() for n in shape)
    assert all(type(keep) is float for _, keep in masks.values())


def test_the_masks_of_a_tensor_network_have_the_shape_of_their_layer_input():
    # a 3x3 valid convolution of a 6x6 image: 4x4 maps, 2 channels; flattened, 32 values
    layers = [Conv2D(2, 3, "relu"), Dropout(0.5), Flatten(), Dropout(0), Dense(2, "softmax")]
    net = tensor_network((6, 6, 1), layers, "cce")
    masks = mask_shapes(net)
    assert masks == {"M2": ((4, 4, 2), 0.5), "M4": ((32,), 1.0)}
    assert all(type(n) is int for shape, _ in masks.values() for n in shape)
    assert all(type(keep) is float for _, keep in masks.values())  # 1 - 0 is the int 1


def test_a_kernel_call_and_verify_name_data_that_is_not_finite_alike():
    model = derive.mlp([3, 4, 2], "tanh", "softmax", "cce")
    kernel = numeric.codegen(model.derive())
    X, Y = np.zeros((4, 3)), np.eye(2)[[0, 1, 0, 1]]
    X[1, 2] = np.nan
    with pytest.raises(derive.BackpropInputError) as by_kernel:
        kernel.loss(kernel.random_params(), X, Y)
    with pytest.raises(derive.BackpropInputError) as by_verify:
        numeric.verify(model, data=(X, Y))
    message = "X[1, 2] is nan: the data must be finite numbers"
    assert str(by_kernel.value) == str(by_verify.value) == message
