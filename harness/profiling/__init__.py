"""Per-layer profiles: each runtime's own profiler, its events mapped back to the spec's layers."""
