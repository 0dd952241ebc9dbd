# %% [markdown]
# # Backpropagation, derived: 3Blue1Brown's chain and Andrew Ng's two-layer net
#
# Two classic lessons, worked by the toolkit instead of by hand. Every formula below is
# *derived* by SymPy from the one definition of each activation and loss, then printed in
# the notation of the lesson it comes from.
#
# * **3Blue1Brown, "Backpropagation calculus"**: a chain of one-neuron layers and the
#   famous $\partial C_0/\partial w^{(L)} = a^{(L-1)}\,\sigma'(z^{(L)})\,2(a^{(L)}-y)$.
# * **Andrew Ng, "Neural Networks and Deep Learning", week 3**: the two-layer planar
#   classifier (2 inputs, 4 tanh units, 1 sigmoid output, cross-entropy) and its
#   vectorized backward pass $dZ^{[2]} = A^{[2]} - Y$, $dW^{[2]} = \dots$
#
# Open this file as a notebook (Jupytext, VS Code, or `two_classics.ipynb` beside it), or
# run it as a script: `python examples/two_classics.py -o out/` prints the same content as
# Markdown and writes both derivation reports (LaTeX, and PDF when pdflatex is there).

# %%
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import sympy

import derive
from reports.display import gradient_chain, install, show
from reports.sections.numbers import worked_instance

install()  # Model and Derivation now display as LaTeX in a notebook


def display(obj):
    """Rich display in a notebook; Markdown on a terminal."""
    try:
        from IPython import get_ipython
        from IPython.display import display as rich

        if get_ipython() is not None:
            return rich(obj)
    except ImportError:
        pass
    print(obj._repr_markdown_() if hasattr(obj, "_repr_markdown_") else obj, end="\n\n")


# %% [markdown]
# ## 1. 3Blue1Brown: a chain of single neurons
#
# Layer $L$ has one neuron: $z^{(L)} = w^{(L)} a^{(L-1)} + b^{(L)}$, $a^{(L)} = \sigma(z^{(L)})$,
# and one training example costs $C_0 = (a^{(L)} - y)^2$. Three layers: the forward pass,
# then the backward pass from the cost back to the first weight. Each backward line is one
# step of the chain rule, with the adjoint of a node written as 3Blue1Brown writes it,
# $\partial C_0/\partial(\text{node})$, and simplified when that is shorter:

# %%
chain = derive.chain(3, activation="sigmoid", loss="sse")
chain_d = chain.derive()
display(show(chain_d, "3b1b"))

# %% [markdown]
# For the last weight this is the video's formula: the three factors of the chain, then
# $a^{(L-1)}$, $\sigma'(z^{(L)})$ and $2(a^{(L)} - y)$, then everything in forward values.
# For the first weight the chain is longer: each layer adds a weight and a $\sigma'$.

# %%
display(gradient_chain(chain_d, "w3", "3b1b"))
display(gradient_chain(chain_d, "w1", "3b1b"))

# %% [markdown]
# With numbers: one example drawn from a seed, every node and every adjoint evaluated through
# the steps above; a finite difference of the cost agrees with the derived gradient.

# %%
example = worked_instance(chain_d, seed=0)
print("C0 =", round(example.cost, 6), "  dC0/dw1 =", example.adjoint("w1"))


def cost_at(w1: float) -> float:
    leaves = {**example.leaves, "w1": w1}
    values = derive.evaluate(chain_d, leaves)
    return float(values[chain.cost.name])


h = 1e-6
slope = (cost_at(example.leaves["w1"] + h) - cost_at(example.leaves["w1"] - h)) / (2 * h)
print("central difference:", slope)

# %% [markdown]
# ## 2. Andrew Ng: the two-layer planar classifier
#
# Four tanh hidden units and a sigmoid output on 2-D points, cost
# $J = \frac{1}{m}\sum_i \mathcal{L}(a^{(i)}, y^{(i)})$ with binary cross-entropy. At the matrix
# level each node is a whole layer for a batch of $m$ examples (one per row, as in NumPy):

# %%
net = derive.mlp([2, 4, 1], activation="tanh", output="sigmoid", loss="bce", level="matrix")
net_d = net.derive()
display(show(net_d, "ng"))

# %% [markdown]
# Sigmoid with cross-entropy collapses to $dZ^{[2]} = (A^{[2]} - Y)/m$ (the $1/m$ of the
# mean sits here, so $dW^{[2]} = A^{[1]\top} dZ^{[2]}$ has none). The tanh layer gives
# $dZ^{[1]} = dA^{[1]} \odot (1 - (A^{[1]})^2)$. Shapes, with rows as examples:

# %%
for step in net_d.needed_steps():
    shape = " x ".join(str(sympy.sympify(d).xreplace(net.dims)) for d in step.node.shape)
    print(f"d{step.node.name:<3} has the shape of {step.node.name:<3} ({shape})")

# %% [markdown]
# At the scalar level (one node per neuron and weight) the same network shows where the
# branches of the chain rule meet: each hidden unit feeds the output through its own weight.

# %%
scalar = derive.mlp([2, 4, 1], activation="tanh", output="sigmoid", loss="bce", level="scalar")
scalar_d = scalar.derive()
display(gradient_chain(scalar_d, "W1_1_2", "ng"))

# %% [markdown]
# ### Train it on Ng's "flower" data with the generated kernel
#
# The kernel is NumPy code printed from the derivation (`numeric.codegen`); a few hundred
# steps of gradient descent separate the petals as in the course.


# %%
def flower(m: int = 400, seed: int = 1):
    """The planar "flower" data set of the course: two classes of petals."""
    rng = np.random.default_rng(seed)
    n = m // 2
    X, Y = np.zeros((m, 2)), np.zeros((m, 1))
    for label in range(2):
        ix = range(n * label, n * (label + 1))
        t = np.linspace(label * 3.12, (label + 1) * 3.12, n) + rng.normal(0, 0.2, n)
        r = 4 * np.sin(4 * t) + rng.normal(0, 0.2, n)
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        Y[ix] = label
    return X, Y


try:
    from numeric import codegen
except ImportError:
    codegen = None

if codegen is not None:
    kernel = codegen(net_d)
    X, Y = flower()
    params = kernel.random_params(seed=2)
    params = {k: v * (0.5 if k.startswith("W") else 0.0) for k, v in params.items()}
    for step in range(3001):
        J, grads = kernel.loss_and_grads(params, X, Y)
        params = {k: params[k] - 1.2 * grads[k] for k in params}
        if step % 1000 == 0:
            print(f"step {step:4d}  cost {J:.4f}")
    accuracy = np.mean((kernel.forward(params, X) > 0.5) == Y)
    print(f"training accuracy {accuracy:.0%}")


# %% [markdown]
# ## 3. The reports
#
# `backprop report` (or `reports.document.write_report`) writes all of this as a LaTeX
# document with its figures: notation table, numbered equations, the computational graph,
# the worked example, the verification against JAX and finite differences, the generated
# kernel and the plots.


# %%
def write_both(out: Path, pdf: bool = True) -> None:
    from reports.document import write_report

    for name, model, notation in (("3b1b_chain", chain, "3b1b"), ("ng_two_layer", net, "ng")):
        result = write_report(model, out / name, notation=notation, compile_pdf=pdf)
        print(result.summary())


if __name__ == "__main__" and "ipykernel" not in sys.modules:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-o", "--out", help="where to write the two reports (default: a temp dir)")
    parser.add_argument("--no-pdf", action="store_true", help="write the .tex only")
    args = parser.parse_args()
    write_both(Path(args.out or tempfile.mkdtemp(prefix="backprop-")), pdf=not args.no_pdf)
