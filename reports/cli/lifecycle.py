"""What the ``backprop`` process does around a command: SIGTERM ends it as cleanly as Ctrl-C
(``timeout`` and CI send it; the report's half-built folder is removed on the way out), and a
command that runs long says so every few seconds on stderr.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from contextlib import contextmanager

#: exit codes a shell reports for a process ended by SIGINT and SIGTERM
INTERRUPTED, TERMINATED = 130, 143
#: seconds before the first "still working" line, and between lines
FIRST_NOTICE_S, NOTICE_EVERY_S = 5.0, 15.0


class Terminated(BaseException):
    """SIGTERM, raised where the program is, so ``finally`` blocks and cleanup run."""


def _raise_terminated(signum, frame):
    raise Terminated()


def handle_sigterm() -> None:
    """Turn SIGTERM into :class:`Terminated` (the default handler would skip every cleanup)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


@contextmanager
def heartbeat(what: str, stream=None):
    """Print ``backprop: still <what> (N s)`` while the block runs longer than a few seconds,
    to a terminal (a script reading stderr gets only what it asked for)."""
    stream = stream or sys.stderr
    if not stream.isatty():
        yield
        return
    done = threading.Event()
    start = time.monotonic()

    def beat():
        wait = FIRST_NOTICE_S
        while not done.wait(wait):
            print(f"backprop: still {what} ({time.monotonic() - start:.0f} s)", file=stream)
            stream.flush()
            wait = NOTICE_EVERY_S

    thread = threading.Thread(target=beat, name="backprop-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
