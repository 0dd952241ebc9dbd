"""numeric.keep_freed_memory: glibc keeps freed blocks, so the next call's arrays are not
faulted in again; numeric.train asks for it unless told not to."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import derive
import numeric
from derive.errors import BackpropInputError
from derive.optimizers import Adam
from numeric.memory import keep_freed_memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")

# 64 MB a call: above glibc's largest adaptive threshold (32 MB), so by default each array is
# mapped afresh and its pages faulted in again; kept, it is reused from the heap
FAULTS = """
import resource, sys
import numpy as np
from numeric import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
np.ones(1 << 23)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    a = np.ones(1 << 23)
    del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    run = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True,
                         check=True)  # fmt: skip
    return int(run.stdout)


def test_kept_memory_is_not_faulted_in_again():
    plain, kept = _faults("plain"), _faults("keep")
    assert plain >= 16, plain  # 4 x 64 MB: 16 faults even in 2 MB huge pages
    assert kept <= plain / 4, (plain, kept)


@pytest.mark.parametrize("bad", [0, -1, 1 << 40, 2.5e8, True, "256MB"])
def test_bad_sizes_are_named(bad):
    with pytest.raises(BackpropInputError, match=r"threshold must be a whole number of bytes"):
        keep_freed_memory(threshold=bad)


def test_elsewhere_than_linux_it_changes_nothing_and_says_so(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory() is False


@pytest.mark.parametrize("keep", [True, False])
def test_train_keeps_freed_memory_unless_told_not_to(monkeypatch, keep):
    calls = []
    monkeypatch.setattr("numeric.training.loop.keep_freed_memory", lambda: calls.append(1))
    kernel = numeric.codegen(derive.mlp([2, 3, 1], activation="tanh"))
    X, Y = np.zeros((4, 2)), np.zeros((4, 1))
    numeric.train(kernel, kernel.random_params(), X, Y, Adam(), epochs=1, progress=False,
                  keep_memory=keep)  # fmt: skip
    assert calls == ([1] if keep else [])


def test_the_bench_tunes_glibc_as_keep_freed_memory_does():
    from bench.fresh_process import TUNED
    from numeric.memory import THRESHOLD, TOP_PAD

    assert TUNED == {
        "MALLOC_TRIM_THRESHOLD_": str(THRESHOLD),
        "MALLOC_MMAP_THRESHOLD_": str(THRESHOLD),
        "MALLOC_TOP_PAD_": str(TOP_PAD),
    }
