"""Data files shipped with the monitor (see README.md here for sources and licences)."""
