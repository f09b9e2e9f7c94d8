"""Model specs shipped with mobilebench (TOML data; importable as harness._models)."""
