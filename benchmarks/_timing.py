"""The one timing rule of the solver benchmarks: a warm-up call, then the median of repeated calls."""
import statistics
import time


def timed(fn, repeats: int) -> tuple[float, object]:
    """(median seconds per call, last result), after one warm-up call (compiled sheets and the
    registry are built once per process)."""
    fn()
    samples, out = [], None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), out
