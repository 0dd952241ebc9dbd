"""reports: what a person reads — the LaTeX/PDF derivation report, its figures, notebook
display, and the ``backprop`` command line."""

from .display import gradient_chain, install, show
from .document import DEFAULT_OPTIONS, DEFAULT_SPEC, ReportResult, default_model, write_report

install()  # Model and Derivation display as LaTeX in Jupyter; derive never imports reports

__all__ = [
    "DEFAULT_OPTIONS",
    "DEFAULT_SPEC",
    "ReportResult",
    "default_model",
    "gradient_chain",
    "install",
    "show",
    "write_report",
]
