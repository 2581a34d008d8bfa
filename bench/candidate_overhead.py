"""What the sandbox costs per candidate: start, screen, trace/export, verify, checks, compile, train.

    python bench/candidate_overhead.py [--candidates 3] [--timesteps 50000] [--seeds 2]
        [--num-envs 4] [--compile-cache DIR] [--same-program]

Three ways of scoring the same quickstart-sized LPO programs, measured in one run:
* `in-process` (the reference): screen, build and train the Python function in this process, as
  the single worker did before the tracer/scorer split;
* `split`: the pool's tracer + scorer, unjailed (`isolation: none`): the cost of the split;
* `jailed`: the same in the jail (`isolation: full`, where this machine allows it).
Inner-loop speed is env steps per second of training alone; the ratios are against the reference.
`--compile-cache DIR` gives the scorers JAX's persistent compilation cache (as runs do);
`--same-program` evaluates one program every time, where the cache can help.

Writes bench/results/candidate_overhead-<stamp>.json and prints a table.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluators.envs import get_env_config  # noqa: E402
from evaluators.families import Candidate, get_family  # noqa: E402
from evaluators.families.lpo import ppo_clip  # noqa: E402
from sandbox.checks import load_program  # noqa: E402
from sandbox.jail import probe  # noqa: E402
from sandbox.pool import SandboxPool  # noqa: E402
from sandbox.score import score  # noqa: E402

PHASES = ("boot_s", "wait_s", "screen_s", "trace_s", "verify_s", "checks_s", "compile_s", "train_s")


def programs(n: int, same: bool) -> list[str]:
    src = textwrap.dedent(inspect.getsource(ppo_clip))
    return [src if same else src.replace("1 + epsilon", f"1 + epsilon + {i * 1e-3}")
            for i in range(n)]


def in_process(src: str, job: dict) -> dict:
    """The reference: what one unsplit worker did with a program."""
    import jax

    family = get_family("lpo")
    t0 = time.perf_counter()
    fn = load_program(src, family.code_signature)
    timings = {"screen_s": time.perf_counter() - t0}
    cand = Candidate(kind="code", fn=fn)
    t0 = time.perf_counter()
    family.probe_verdict(jax.block_until_ready(jax.jit(family.candidate_probe(cand))()))
    timings["checks_s"] = time.perf_counter() - t0
    env = get_env_config("cartpole").scaled(total_timesteps=job["timesteps"],
                                            num_envs=job["num_envs"])
    s = score(family, cand, {}, [env], [], job["seeds"], job["seed"])
    timings.update(compile_s=s.compile_s, train_s=s.train_s)
    return {"outcome": s.outcome, "timings": timings, "env_steps": s.env_steps}


def measure(mode: str, srcs: list[str], job: dict, cache: str | None) -> list[dict]:
    rows = []
    pool = None if mode == "in-process" else SandboxPool(
        spares=1, time_limit_s=600, compile_cache_dir=cache,
        isolation="none" if mode == "split" else "full")
    try:
        for i, src in enumerate(srcs):
            t0 = time.perf_counter()
            if pool is None:
                r = in_process(src, job)
            else:
                res = pool.evaluate({**job, "source": src})
                r = {"outcome": res.outcome, "timings": res.timings, "env_steps": res.env_steps}
            row = {"mode": mode, "candidate": i, "outcome": r["outcome"],
                   "total_s": time.perf_counter() - t0,
                   **{p: float(r["timings"].get(p, 0.0)) for p in PHASES}}
            row["sps"] = r["env_steps"] / max(row["train_s"], 1e-9)
            rows.append(row)
    finally:
        if pool is not None:
            pool.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--candidates", type=int, default=3)
    ap.add_argument("--timesteps", type=int, default=50_000)  # the quickstart's
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--num-envs", type=int, default=4)
    ap.add_argument("--compile-cache", metavar="DIR", default=None)
    ap.add_argument("--same-program", action="store_true")
    args = ap.parse_args()
    job = {"family": "lpo", "kind": "code", "envs": ["cartpole"], "seeds": args.seeds, "seed": 0,
           "timesteps": args.timesteps, "num_envs": args.num_envs}
    srcs = programs(args.candidates, args.same_program)
    modes = ["in-process", "split"] + (["jailed"] if probe().full else [])
    rows = [r for m in modes for r in measure(m, srcs, job, args.compile_cache)]
    summary = {}
    for m in modes:
        mine = [r for r in rows if r["mode"] == m]
        steady = mine[1:] or mine  # the first candidate also warms up this process
        summary[m] = {k: sum(r[k] for r in steady) / len(steady) for k in (*PHASES, "total_s", "sps")}
    ref = summary["in-process"]
    print(f"{'mode':<11}{'boot':>6}{'wait':>6}{'trace':>7}{'check':>7}{'compile':>8}{'train':>7}"
          f"{'total':>7}{'x total':>8}{'x sps':>7}")
    for m, s in summary.items():
        print(f"{m:<11}{s['boot_s']:>6.2f}{s['wait_s']:>6.2f}{s['trace_s'] + s['screen_s'] + s['verify_s']:>7.2f}"
              f"{s['checks_s']:>7.2f}{s['compile_s']:>8.2f}{s['train_s']:>7.2f}{s['total_s']:>7.2f}"
              f"{s['total_s'] / ref['total_s']:>8.2f}{s['sps'] / ref['sps']:>7.2f}")
    print("seconds per candidate (mean after the first); boot: worker start to ready, paid\n"
          "while the previous candidate runs (spares); wait: what the candidate waited for one;\n"
          "trace: screen + trace + export + verify; x: ratio to in-process; "
          f"jail: {probe().summary()}")
    out = ROOT / "bench" / "results" / f"candidate_overhead-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "jail": probe().to_json(), "rows": rows,
                               "steady_mean": summary}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
