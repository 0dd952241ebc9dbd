"""Benchmarks: speed and catch rates, run by hand (``python -m bench.<name>``).

Never timed in the test suite: the machine is shared and noisy.
"""
