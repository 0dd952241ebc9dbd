"""The report's sections in the order they appear; each is a function of the context that
returns LaTeX (or "" when it has nothing to show).

Every formula is printed from the derivation by :class:`~reports.latex.printer.TextbookPrinter`
(the only hand-written LaTeX in the sections is prose, table rules and environment names). Long
networks are summarised: a table or a list of steps shows a few members of each family
(``W1``, ``z1``, ...) and says how many more follow the same pattern (:mod:`reports.latex.layout`).

>>> [section.__name__ for section in SECTIONS][:3]
['header', 'notation_section', 'forward_section']
"""

from __future__ import annotations

from .back_matter import listing_section, plots_section
from .backward_pass import chain_rule_section, graph_section, local_derivatives_section
from .forward_pass import forward_section
from .front_matter import header, notation_section
from .learning import learning_section
from .matrix_form import matrix_section
from .verification import verification_section
from .worked_example import worked_example_section

SECTIONS = (
    header,
    notation_section,
    forward_section,
    graph_section,
    local_derivatives_section,
    chain_rule_section,
    matrix_section,
    worked_example_section,
    verification_section,
    learning_section,
    listing_section,
    plots_section,
)
