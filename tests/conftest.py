import os

# Tests that need several devices start a subprocess with this flag; the main process keeps one.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
