"""fleet-tui: ship container images to edge fleets for kilobytes, and roll them out safely."""

__version__ = "0.1.0"
