"""reports.cli: the ``backprop`` command line (entry point ``reports.cli.main:main``).

:mod:`.main` parses and dispatches (exit codes, one-line errors); each subcommand is a module
of its own (:mod:`.derive_command`, :mod:`.codegen_command`, :mod:`.check_command`,
:mod:`.report_command`), sharing :mod:`.options`; :mod:`.plain` prints a derivation for the
terminal.

May import: ``derive``, ``numeric``, the rest of ``reports``.
"""
