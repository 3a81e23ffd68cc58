# Tracks Lore's own version (the workspace's Cargo.toml); a test keeps the two equal.
__version__ = "0.1.0"
