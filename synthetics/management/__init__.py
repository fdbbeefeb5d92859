"""Management commands of Synthetics: cli.py holds their shared base class and argument types."""
