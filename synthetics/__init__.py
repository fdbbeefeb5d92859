"""Synthetics: realistic, clearly tagged synthetic user activity for the application's tables."""
