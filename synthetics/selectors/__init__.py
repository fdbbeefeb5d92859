"""Reads, by audience: `run_inputs` is what a run reads; `ledger` counts the run ledger; `status`, `activity`, `sim_users` and `cleanup` are what their API views and the Studio read."""
