"""Memory budgets and spill: the per-query pool, reservations, and spill files."""
