"""Speed of the PPO inner loop per family vs a plain Adam-PPO and vs raw env stepping.

    python bench/inner_loop.py [--quick]

For each environment (CartPole-v1, Breakout-MinAtar, CPU-scaled) it times every family's warm
start through the product's evaluator (population 1 x S seeds, sharded/vmapped as in real use),
the standard PPO of `bench/reference_ppo.py` on the same settings, and random-action vmapped
stepping.  Then it times a population of 1, 8 and 32 LPO networks.  Compilation is excluded;
each timing is the best of `--repeats` runs.  Writes bench/results/inner_loop.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import jax  # noqa: E402

from evaluators.envs import get_env_config  # noqa: E402
from evaluators.families import FAMILIES  # noqa: E402
from evaluators.fitness import PopulationEvaluator, stack_population  # noqa: E402
from reference_ppo import make_raw_stepper, make_reference_train  # noqa: E402


def best_time(fn, repeats: int) -> float:
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(i))
        times.append(time.perf_counter() - t0)
    return min(times)


def time_family(name, env, seeds, repeats):
    fam = FAMILIES[name]
    ev = PopulationEvaluator(fam, fam.warm_start(), env, 1, seeds)
    ev({}, jax.random.key(0))  # compile + warm
    run_s = best_time(lambda i: ev({}, jax.random.key(i + 1)).returns, repeats)
    return seeds * env.steps_per_run / run_s, ev.compile_s


def time_reference(env, seeds, repeats):
    fn = jax.jit(jax.vmap(make_reference_train(env)))
    keys = [jax.random.split(jax.random.key(i), seeds) for i in range(repeats + 1)]
    t0 = time.perf_counter()
    compiled = fn.lower(keys[0]).compile()
    compile_s = time.perf_counter() - t0
    compiled(keys[0])
    run_s = best_time(lambda i: compiled(keys[i + 1]), repeats)
    return seeds * env.steps_per_run / run_s, compile_s


def time_raw(env, repeats, steps=2000):
    fn = jax.jit(make_raw_stepper(env, env.num_envs * 8, steps))
    fn(jax.random.key(0))
    run_s = best_time(lambda i: fn(jax.random.key(i + 1)), repeats)
    return env.num_envs * 8 * steps / run_s


def time_population(env, sizes, repeats):
    lpo = FAMILIES["lpo"]
    rows = []
    for pop in sizes:
        members = [jax.tree.map(lambda x, k=k: x + 0.01 * k, lpo.init_network(jax.random.key(0)))
                   for k in range(pop)]
        meta = stack_population(members)
        ev = PopulationEvaluator(lpo, lpo.network(), env, pop, 1)
        ev(meta, jax.random.key(0))
        run_s = best_time(lambda i: ev(meta, jax.random.key(i + 1)).returns, repeats)
        rows.append({"population": pop, "seconds": run_s, "compile_s": ev.compile_s})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller runs (a smoke test of the bench)")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    scale = 0.25 if args.quick else 1.0
    settings = {
        "cartpole": dict(env=get_env_config("cartpole").scaled(total_timesteps=int(2e5 * scale)), seeds=8),
        "breakout": dict(env=get_env_config("breakout").scaled(total_timesteps=int(2e5 * scale), num_envs=16),
                         seeds=2),
    }
    results = {"machine": {"platform": platform.platform(), "devices": [str(d) for d in jax.devices()]},
               "envs": {}, "population": []}
    print(f"{'env':10} {'loop':12} {'env steps/s':>12} {'vs plain PPO':>13} {'vs raw env':>11} {'compile s':>10}")
    for key, s in settings.items():
        env, seeds = s["env"], s["seeds"]
        ref_sps, ref_compile = time_reference(env, seeds, args.repeats)
        raw_sps = time_raw(env, args.repeats)
        rows = {"plain_ppo": {"sps": ref_sps, "compile_s": ref_compile}}
        print(f"{key:10} {'plain PPO':12} {ref_sps:12,.0f} {1.0:13.2f} {ref_sps / raw_sps:11.3f} {ref_compile:10.1f}")
        for name in FAMILIES:
            sps, comp = time_family(name, env, seeds, args.repeats)
            rows[name] = {"sps": sps, "compile_s": comp, "ratio_vs_plain": sps / ref_sps,
                          "ratio_vs_raw": sps / raw_sps}
            print(f"{key:10} {name:12} {sps:12,.0f} {sps / ref_sps:13.2f} {sps / raw_sps:11.3f} {comp:10.1f}")
        rows["raw_env"] = {"sps": raw_sps}
        print(f"{key:10} {'raw env':12} {raw_sps:12,.0f}")
        results["envs"][key] = {"settings": {"total_timesteps": env.total_timesteps, "num_envs": env.num_envs,
                                             "seeds": seeds}, "rows": rows}
    pop_env = get_env_config("cartpole").scaled(total_timesteps=int(5e4 * scale))
    print(f"\npopulation scaling (LPO networks, CartPole {pop_env.total_timesteps} steps, 1 seed)")
    print(f"{'population':>10} {'seconds':>9} {'s / member':>11} {'vs pop 1':>9}")
    rows = time_population(pop_env, (1, 8, 32), args.repeats)
    for r in rows:
        r["ratio_vs_pop1"] = r["seconds"] / rows[0]["seconds"]
        print(f"{r['population']:10d} {r['seconds']:9.2f} {r['seconds'] / r['population']:11.3f} {r['ratio_vs_pop1']:9.2f}")
    results["population"] = rows
    out = ROOT / "bench" / "results" / "inner_loop.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
