"""A model file: ``backprop derive net.py`` runs ``net.py`` and takes the ``derive.Model`` it
names ``model``. That is how a user brings their own network (or a registered activation,
or a matrix expression) to the command line.

A file that fails says where in one line (``net.py, line 7: NameError: ...``); a file with no
``model``, or one that is not a Model, says so. Both are bad input (exit 2).
"""

from __future__ import annotations

import runpy
import sys
import traceback
from pathlib import Path

from derive import BackpropInputError, Model


class TensorNetworkFile(BackpropInputError):
    """The file's ``model`` is a tensor network (images, sequences): ``derive``, ``check``,
    ``codegen``, ``report`` (with ``--train`` too) and ``train`` catch this and take
    ``.model``."""

    def __init__(self, path: Path, model):
        self.model = model
        super().__init__(f"{path}: 'model' is a tensor network, which this command does not take")


def is_model_file(spec: str | None) -> bool:
    """A spec naming a Python file (``net.py``), not a built-in model or an expression."""
    return isinstance(spec, str) and spec.strip().endswith(".py")


def load_model(spec: str) -> Model:
    """Run the file and return its ``model``."""
    path = Path(spec.strip())
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise BackpropInputError(f"model file {str(path)!r} {what}")
    namespace = _run(path)
    if "model" not in namespace:
        raise BackpropInputError(
            f"{path} defines no 'model': assign the network to a variable named model, "
            "e.g. model = derive.mlp([4, 3, 2])"
        )
    model = namespace["model"]
    if type(model).__name__ == "TensorNetwork":
        raise TensorNetworkFile(path, model)
    if not isinstance(model, Model):
        raise BackpropInputError(
            f"{path}: 'model' must be a derive.Model (from derive.mlp, derive.network, "
            f"derive.from_expr, ...), got {type(model).__name__}"
        )
    return model


def _run(path: Path) -> dict:
    """The file's globals after running it, its folder importable as it would be for
    ``python net.py``; an error in the file becomes one line naming the file and line."""
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        return runpy.run_path(str(path), run_name="__backprop_model__")
    except SyntaxError as err:
        raise BackpropInputError(f"{path}, line {err.lineno}: SyntaxError: {err.msg}") from None
    except SystemExit as err:
        raise BackpropInputError(f"{path} exited (code {err.code}) while loading") from None
    except Exception as err:
        frame = frame_in(err, path)
        where = f", line {frame.lineno}" if frame is not None else ""
        message = f"{path}{where}: {type(err).__name__}: {err}".splitlines()[0]
        raise BackpropInputError(message) from err
    finally:
        if folder in sys.path:
            sys.path.remove(folder)


def frame_in(err: BaseException, path: Path) -> traceback.FrameSummary | None:
    """The innermost frame of ``err``'s traceback that runs the file ``path``, or None."""
    target = Path(path).resolve()
    frames = [
        f for f in traceback.extract_tb(err.__traceback__) if Path(f.filename).resolve() == target
    ]
    return frames[-1] if frames else None
