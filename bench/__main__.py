"""Run every benchmark, each in its own process (``make bench``).

    python -m bench            # all of them, full size (about 15 minutes on 2 cores)
    python -m bench --quick    # a rough pass of each

A fresh process per benchmark because each pins its BLAS/XLA threads before NumPy and
JAX are first imported, and because what ran before in a process (the allocator's state,
JAX's compile cache) shows in the times.
"""

from __future__ import annotations

import subprocess
import sys

QUICK = {  # every benchmark, with the arguments of its rough pass
    "derive_scale": ["--quick"],
    "codegen_speed": ["--quick"],
    "gradcheck_catch_rate": ["--seeds", "20", "--seeds-any", "10", "--clean", "5"],
    "elementwise_forms": ["--rounds", "30"],
    "train_speed": ["--quick"],
    "convnet_speed": ["--quick"],
    "fresh_process": ["--rounds", "2", "--calls", "200"],
}


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    failed = []
    for name, quick_args in QUICK.items():
        command = [sys.executable, "-m", f"bench.{name}", *(quick_args if quick else [])]
        print(f"\n$ python -m bench.{name} {' '.join(command[3:])}".rstrip(), flush=True)
        if subprocess.run(command).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
