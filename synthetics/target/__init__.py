"""Attach mode (issue 23, being built): the application's own tables as Synthetics reads them, and
(to come) the target file that maps what the engine writes onto them."""
