"""Pure-JAX evaluators: environments, the PPO inner loop, algorithm families and fitness.

Nothing here performs I/O or imports the rest of the project.
"""

import os as _os

# XLA's CPU "concurrency-optimised scheduler" (jaxlib 0.10) deadlocks on some vmapped PPO
# programs: the run blocks forever at 0% CPU, depending on array shapes.  Turning it off fixes
# every case we found and costs nothing measurable.  It must be set before JAX starts its backend.
_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
if "xla_cpu_enable_concurrency_optimized_scheduler" not in _os.environ.get("XLA_FLAGS", ""):
    _os.environ["XLA_FLAGS"] = (_os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
