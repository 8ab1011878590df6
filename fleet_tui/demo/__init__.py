"""The embedded demo: an image set in an OCI layout store, a seeded local hub, a simulated fleet."""
