import os
from pathlib import Path

# Tests that need several devices start a subprocess with this flag; the main process keeps one.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One persistent XLA compilation cache for the whole test session, this process and the CLIs it
# starts: the same PPO loop is compiled by many tests (and again by every resume), and on 2 cores
# compiling costs more than training at test sizes.  Sandbox workers never inherit it (the pool
# hands scorers their own cache and tracers none).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      str(Path(__file__).resolve().parent.parent / "runs" / ".jax-cache" / "tests"))
