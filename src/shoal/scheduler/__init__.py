"""The scheduler: which task attempts of a query run when, and what a failure does.

Between ``stages/`` (the plan cut into stages) and ``runtime/`` (executors that run
task descriptions): see ``scheduler/materialized.py`` and ``runtime/protocol.py``.
"""
