"""Imported once by the fork server the local Dask workers come from (and by each worker, as its
Dask preload), so every worker starts with the library imported, the roofline sheet compiled and
pandas loaded: a replacement worker is ready in a fraction of a second. Remote workers may load it
too: ``dask worker tcp://scheduler:8786 --preload mlsysim_opt.service._preload``."""
try:
    from mlsysim_opt.service import jobs

    jobs.warm_up()
except Exception:  # a failed warm-up only makes workers start slower; they import on their own
    pass
