"""``python -m backprop derive mlp:4-3-2``: the ``backprop`` command.

Ctrl-C while the toolkit is still being imported (SymPy, NumPy) is one line too, not a
traceback from deep inside an import.
"""

import sys


def run() -> int:
    try:
        from reports.cli.main import main
    except KeyboardInterrupt:
        print("backprop: interrupted", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(run())
