"""Imported once by the worker fork server, so every worker forked from it starts with the library
imported, the roofline sheet compiled and pandas loaded (a replacement worker is ready in
milliseconds)."""
try:
    from mlsysim_opt.service import jobs, workers  # noqa: F401  (the job table and the worker loop)

    jobs.warm_up()
except Exception:  # a failed warm-up only makes workers start slower; they import on their own
    pass
