"""A training run as ``backprop train`` and ``backprop report --train`` make it: the model's
kernel on a data set with an update rule, its figures, and its one-line summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import derive
from derive.errors import BackpropInputError
from derive.optimizers import UpdateRule
from derive.tensor_network import TensorNetwork


@dataclass
class TrainingRun:
    """What the outputs are written from."""

    model: derive.Model | TensorNetwork
    kernel: object
    data: object  # numeric.training.Data
    Y: np.ndarray
    run: object  # numeric.Training
    batch_size: int
    seed: int
    kind: str | None  # how Y names classes (numeric.training.history.class_kind)
    best_line: float | None = None  # the best accuracy of any line, 2-D binary data only

    @property
    def optimizer(self) -> UpdateRule:
        return self.run.optimizer

    @property
    def epochs(self) -> int:
        return len(self.run.history.epoch_loss)

    @property
    def perceptron(self) -> bool:
        return not self.optimizer.uses_gradient

    def summary(self) -> str:
        """One line: what was trained on what, how, and how it ended."""
        from numeric.training.datasets import model_name

        history = self.run.history
        start, end = history.epoch_loss[0], history.epoch_loss[-1]
        what = "error rate" if self.perceptron else "loss"
        batches = history.steps_per_epoch
        line = (
            f"{model_name(self.model)} on {self.data.name} ({len(self.data.X)} examples): "
            f"{self.optimizer.name} lr={self.optimizer.lr:g}, {self.epochs} epochs of "
            f"{batches} batch{'es' if batches != 1 else ''}; {what} {start:.4g} -> {end:.4g}"
        )
        if history.accuracy:
            line += f", accuracy {history.accuracy[-1]:.1%}"
        if self.perceptron:
            line += (
                f", converged in epoch {history.converged_epoch}"
                if history.converged_epoch
                else ", never converged"
            )
            if self.best_line is not None and self.best_line < 1:
                line += f" (no line separates {self.data.name}: the best one gets "
                line += f"{self.best_line:.0%} right)"
        return line

    def draw(self, directory: Path) -> dict[str, Path]:
        """The loss curve and (two inputs) the decision boundary, as PDF and PNG; images
        and sequences have no plane to draw."""
        from reports.figures.learning import decision_boundary, loss_curve

        ylabel = "error rate (mean |y - step(z)|)" if self.perceptron else "loss (mean cost)"
        figures = {"loss": loss_curve(self.run.history, directory / "loss", ylabel)}
        if self.data.X.shape[1:] == (2,) and self.kind is not None:
            figures["boundary"] = decision_boundary(
                self.kernel, self.run.params, self.data.X, self.data.labels, self.kind,
                directory / "boundary",
            )  # fmt: skip
        return figures


def run_training(model, data, optimizer: UpdateRule, epochs: int, batch_size: int, seed: int,
                 progress: bool | None = None, say=None) -> TrainingRun:  # fmt: skip
    """Generate ``model``'s kernel and train it from seeded random parameters on ``data``.
    ``model`` is a derive.Model or a network on images or sequences (whose CSV rows are
    shaped to its input here). ``say`` gets one line once the data and the rule are checked,
    before the work starts, so a refused run prints only its error."""
    from numeric import codegen, train
    from numeric.training import check_optimizer
    from numeric.training.datasets import best_line_accuracy, inputs_for, targets_for
    from numeric.training.history import class_kind

    dense = None if isinstance(model, TensorNetwork) else model  # a network has no labels
    if dense is not None and not dense.targets:
        raise BackpropInputError(f"{model.spec} has no targets to learn (it is an expression)")
    data = inputs_for(model, data)
    Y = targets_for(model, data)
    # the shapes and the model train will check (a network's kernel carries no model)
    check_optimizer(optimizer, model.param_shapes(), dense)
    if say is not None:
        say("training the network")
    kernel = codegen(model)
    run = train(kernel, kernel.random_params(seed=seed), data.X, Y, optimizer, epochs,
                batch_size, seed, progress=progress)  # fmt: skip
    binary = data.X.shape[1:] == (2,) and set(np.unique(data.labels)) <= {0, 1}
    best = best_line_accuracy(data.X, data.labels) if binary else None
    return TrainingRun(model, kernel, data, Y, run, batch_size, seed, class_kind(dense, Y), best)
