"""A model file: ``backprop derive net.py`` runs ``net.py`` and takes the ``derive.Model`` it
names ``model``. That is how a user brings their own network (or a registered activation,
or a matrix expression) to the command line.

A file that fails says where in one line (``net.py, line 7: NameError: ...``); a file with no
``model``, or one that is not a Model, says so. Both are bad input (exit 2).
"""

from __future__ import annotations

import ast
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
    if not _may_bind_model(path):  # refused before the file runs (it may train for minutes)
        raise BackpropInputError(_NO_MODEL.format(path=path))
    namespace = _run(path)
    if "model" not in namespace:
        raise BackpropInputError(_NO_MODEL.format(path=path))
    model = namespace["model"]
    if type(model).__name__ == "TensorNetwork":
        raise TensorNetworkFile(path, model)
    if not isinstance(model, Model):
        raise BackpropInputError(
            f"{path}: 'model' must be a derive.Model (from derive.mlp, derive.network, "
            f"derive.from_expr, ...), got {type(model).__name__}"
        )
    return model


_NO_MODEL = (
    "{path} defines no 'model': assign the network to a variable named model, "
    "e.g. model = derive.mlp([4, 3, 2])"
)
#: what can bind a name without writing it: the file is run to see
_DYNAMIC = {"exec", "eval", "globals", "vars", "setattr", "__import__", "locals"}


def _may_bind_model(path: Path) -> bool:
    """False only when the file's text surely binds no global ``model``: no assignment,
    import, loop, ``with``, def or class of that name at module level (a function's own
    names are its locals, unless declared ``global model``), no ``import *`` and no call
    that binds names dynamically. Unparsable text is left to the run, which names its error."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return True
    for node in ast.walk(tree):  # anywhere: these reach the module's names
        if isinstance(node, ast.Global) and "model" in node.names:
            return True
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "model"
            and isinstance(node.ctx, ast.Store)
        ):  # sys.modules[__name__].model = ...
            return True
        if isinstance(node, ast.Name | ast.Attribute) and _DYNAMIC & {
            getattr(node, "id", None),
            getattr(node, "attr", None),
        }:
            return True
    return any(_binds_model(node) for node in _module_level(tree))


def _module_level(tree):
    """The module's nodes, not those inside a function or class body (their names are their
    own); the def or class itself is given, for its name. Comprehensions are walked: a
    name bound there at worst runs the file."""
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if node is tree or not isinstance(node, scopes):
            stack.extend(ast.iter_child_nodes(node))


def _binds_model(node) -> bool:
    if isinstance(node, ast.Name):
        return node.id == "model" and isinstance(node.ctx, ast.Store)
    if isinstance(node, ast.alias):  # import model, from m import x as model, import *
        return (node.asname or node.name.split(".")[0]) == "model" or node.name == "*"
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.MatchAs):
        return node.name == "model"
    return False


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
