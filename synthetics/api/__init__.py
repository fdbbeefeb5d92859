"""The REST API for automation: the seed's seven endpoints under /api/synthetics/."""
