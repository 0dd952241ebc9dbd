"""Keeping freed memory in the process, so a kernel called over and over does not fault.

glibc's malloc hands each freed block of 128 kB or more back to the operating system (an
``munmap``, or a trim of the heap's top), and the next call's arrays of that size fault
their pages in again, one page at a time. A convnet kernel's im2col patches (megabytes a
call) spend a third of its time there; a residual MLP's 256 kB gradients a quarter
(``bench.fresh_process``, ``bench.convnet_speed --keep-memory``). ``keep_freed_memory``
raises glibc's thresholds, as the ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_`` and
``MALLOC_TOP_PAD_`` environment variables do at start-up, so freed blocks stay in the heap
for the next call. It holds for the rest of the process (glibc cannot be told to go back
to its default, adaptive thresholds), and the process keeps up to ``threshold`` bytes of
freed memory. ``numeric.train`` calls it unless told not to.

>>> keep_freed_memory(threshold=0)
Traceback (most recent call last):
derive.errors.BackpropInputError: threshold must be a whole number of bytes from 1 MB to 1 GB, got 0
"""

from __future__ import annotations

import ctypes
import sys

from derive.errors import BackpropInputError

#: mallopt's parameter numbers (glibc's malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MB = 1 << 20
#: the defaults: blocks under 256 MB kept, the heap grown 64 MB at a time
THRESHOLD, TOP_PAD = 256 * MB, 64 * MB


def keep_freed_memory(threshold: int = THRESHOLD, top_pad: int = TOP_PAD) -> bool:
    """Tell glibc's malloc to keep freed blocks below ``threshold`` bytes for reuse (and to
    grow the heap ``top_pad`` bytes at a time). True when it took effect; False where the C
    library is not glibc (macOS, Windows, musl), which changes nothing."""
    for name, value in (("threshold", threshold), ("top_pad", top_pad)):
        if isinstance(value, bool) or not isinstance(value, int) or not MB <= value <= 1024 * MB:
            raise BackpropInputError(
                f"{name} must be a whole number of bytes from 1 MB to 1 GB, got {value!r}"
            )
    mallopt = _glibc_mallopt()
    if mallopt is None:
        return False
    settings = ((M_MMAP_THRESHOLD, threshold), (M_TRIM_THRESHOLD, threshold), (M_TOP_PAD, top_pad))
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)


def _glibc_mallopt():
    """glibc's ``mallopt``, or None: musl has one too, which does nothing."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None)  # the C library this process already runs on
    if not hasattr(libc, "gnu_get_libc_version"):
        return None
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt
