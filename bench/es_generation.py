"""Seconds per ES generation vs population size and number of (forced host) devices.

    python bench/es_generation.py [--timesteps N] [--pops 8 32 64] [--devices 1 2]

Each cell runs in a fresh subprocess (device count is fixed at JAX start-up): it builds the
population evaluator for LPO networks on CartPole, compiles it, then times `--gens` generations
of ask -> evaluate -> tell.  Ratios are against population 8 on 1 device, measured in the same
run.  A cell that does not finish within `--timeout` is reported as such.  Writes
bench/results/es_generation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CELL = r"""
import json, sys, time, jax, numpy as np
from jax.flatten_util import ravel_pytree
from evaluators.envs import get_env_config
from evaluators.families import get_family
from evaluators.fitness import PopulationEvaluator, local_mesh
from workbench.methods.open_es import OpenES
pop, timesteps, gens = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
lpo = get_family("lpo")
_, unravel = ravel_pytree(lpo.init_network(jax.random.key(0)))
env = get_env_config("cartpole").scaled(total_timesteps=timesteps)
ev = PopulationEvaluator(lpo, lpo.network(), env, pop, 1, mesh=local_mesh())
es = OpenES(pop)
state = es.init(np.asarray(ravel_pytree(lpo.es_start(jax.random.key(0), None))[0]), 0.03, 0.03, 0)
unravel_pop = jax.jit(jax.vmap(unravel))
times = []
for g in range(gens + 1):
    t0 = time.perf_counter()
    population, noise, state, key = es.ask(state)
    fitness = ev(unravel_pop(population), key).normalized
    state = es.tell(state, noise, fitness)
    times.append(time.perf_counter() - t0)
print(json.dumps({"devices": jax.local_device_count(), "first_s": times[0],
                  "per_gen_s": float(np.median(times[1:]))}))
"""


def cell(pop: int, devices: int, timesteps: int, gens: int, timeout: float) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    try:
        out = subprocess.run([sys.executable, "-c", CELL, str(pop), str(timesteps), str(gens)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {timeout:.0f} s"}
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timesteps", type=int, default=20_000)
    ap.add_argument("--gens", type=int, default=3)
    ap.add_argument("--pops", type=int, nargs="+", default=[8, 32, 64])
    ap.add_argument("--devices", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    rows = []
    print(f"{'devices':>7} {'population':>10} {'s / generation':>15} {'vs pop 8, 1 dev':>16} {'first (compile) s':>18}")
    ref = None
    for devices in args.devices:
        for pop in args.pops:
            r = {"devices": devices, "population": pop, **cell(pop, devices, args.timesteps, args.gens, args.timeout)}
            if "per_gen_s" in r and ref is None:
                ref = r["per_gen_s"]
            if "per_gen_s" in r:
                r["ratio"] = r["per_gen_s"] / ref
                print(f"{devices:7d} {pop:10d} {r['per_gen_s']:15.2f} {r['ratio']:16.2f} {r['first_s']:18.1f}")
            else:
                print(f"{devices:7d} {pop:10d} {r['error']:>15}")
            rows.append(r)
    out = ROOT / "bench" / "results" / "es_generation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"timesteps": args.timesteps, "rows": rows}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
