"""reports.latex: LaTeX as the report writes it, and pdflatex.

:mod:`.printer` is SymPy's LaTeX printer taught the textbooks' notation (:mod:`.notation`:
Ng's or 3Blue1Brown's symbols; :mod:`.textbook`: ``σ'(z)`` for an elementwise derivative);
:mod:`.equations` breaks long equations into numbered ``align`` rows; :mod:`.layout` holds
headings, escaped prose and summarised lists; :mod:`.pdflatex` runs pdflatex and reads its log.

May import: ``derive``, SymPy, the standard library. Not ``numeric``, nor the sections,
figures or CLI of ``reports``, which build on it.
"""
