"""Timing helper shared by the benchmark scripts (standard library only: the PyTorch worker imports it too)."""

import statistics
import time


def median_time(fn, repeats, warmup=2):
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs, after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
