"""The population axis sharded over 2 forced host devices gives the 1-device results."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, jax, numpy as np
from evaluators.envs import get_env_config
from evaluators.families import get_family
from evaluators.fitness import PopulationEvaluator, stack_population
env = get_env_config("cartpole").scaled(total_timesteps=4096)
lpo = get_family("lpo")
base = lpo.init_network(jax.random.key(0))
members = [jax.tree.map(lambda x, k=k: x + 0.05 * k * jax.random.normal(jax.random.key(k), x.shape), base)
           for k in range(3)]  # 3 members: padded to 4 on 2 devices
ev = PopulationEvaluator(lpo, lpo.network(), env, 3, 2)  # default mesh: every device
out = ev(stack_population(members), jax.random.key(7))
print(json.dumps({"devices": jax.local_device_count(), "mesh": int(ev.mesh.devices.size),
                  "returns": out.returns.tolist(), "curves": out.curves.tolist()}))
"""


def _run(devices: int, timeout: int = 600) -> dict:
    env = dict(os.environ)
    flags = env.get("XLA_FLAGS", "")
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_two_devices_match_one_device():
    """By default the mesh takes every device, and sharding the population changes no bit."""
    one, two = _run(1), _run(2, timeout=300)
    assert one["mesh"] == 1 and two["mesh"] == 2 and two["devices"] == 2
    np.testing.assert_array_equal(np.asarray(two["returns"]), np.asarray(one["returns"]))
    np.testing.assert_array_equal(np.asarray(two["curves"]), np.asarray(one["curves"]))
    assert np.asarray(one["curves"]).shape[:2] == (3, 2)  # every member and seed, whole curves

