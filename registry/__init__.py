"""Vetted reference data (YAML, every value with a unit and a source). Loaded by
:mod:`mlsysim_opt.catalog`; see docs/registry-format.md."""
