"""Reads, by audience: `run_inputs` is what a run reads; `dashboards` is what the status, activity and sim-user views read."""
