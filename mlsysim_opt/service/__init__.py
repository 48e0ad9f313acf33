"""The HTTP service (``mlsysim-opt serve``)."""
