"""Backends that compile equation sheets: dimension checking, numeric evaluation (scalar and
vectorized), exact derivatives and Pyomo expressions. Each backend is a table of rules keyed by
expression node type (:data:`rules.NODE_TYPES`)."""
