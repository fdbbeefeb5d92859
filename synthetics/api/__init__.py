"""The REST API for automation under /api/synthetics/: the seed's seven endpoints and insights."""
