"""reports.figures: the report's figures, drawn with matplotlib (Agg) as vector files.

:mod:`.draw` makes every figure a report needs from its context; :mod:`.graph` draws the
computational graph (forward values, gradients, forks); :mod:`.plots` the activations with
their derivatives and the finite-difference V curve.

May import: ``derive``, ``numeric``, ``reports.latex``, ``reports.sections`` (the context and
its numbers), matplotlib. Not the CLI.
"""
