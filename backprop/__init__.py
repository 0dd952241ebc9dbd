"""``python -m backprop``: the ``backprop`` command (:mod:`reports.cli.main`) under its own name."""
