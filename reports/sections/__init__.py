"""reports.sections: the report's text, one module per part, in the order of :mod:`.order`.

:mod:`.front_matter` (header, notation table), :mod:`.forward_pass`, :mod:`.backward_pass`
(graph, local derivatives, chain rule), :mod:`.matrix_form`, :mod:`.worked_example`,
:mod:`.verification`, :mod:`.back_matter` (kernel listing, plots). Each section is a function
of the shared :class:`~reports.sections.context.ReportContext` (:mod:`.context`) returning
LaTeX; :mod:`.numbers` computes the worked example's values and their checks.

May import: ``derive``, ``numeric``, ``reports.latex``. Not the figures or the CLI.
"""
