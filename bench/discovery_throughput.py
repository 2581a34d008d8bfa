"""Candidates per hour on the quickstart config, with 1 and with 2 candidates in flight.

    python bench/discovery_throughput.py [--candidates 6] [--concurrency 1 2] [--isolation auto]

Each setting scores the same distinct quickstart-sized LPO programs (CartPole, 50k steps, 2
seeds, 4 envs, as `configs/quickstart.yaml`) through the local executor, in jailed workers, from
a pool whose first spares are already started (a run's pool is started once and kept).  The
reference is concurrency 1, measured in the same run; the ratio is candidates per hour against
it.  The figure chooses the CPU default of `sandbox.concurrency` (`CPU_CONCURRENCY` in
`sandbox/accelerators.py`).

Writes bench/results/discovery_throughput-<stamp>.json and prints a table.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluators.families.lpo import ppo_clip  # noqa: E402
from sandbox.executors import PoolSettings, make_executor  # noqa: E402
from sandbox.jail import probe  # noqa: E402

JOB = {"family": "lpo", "kind": "code", "envs": ["cartpole"], "seeds": 2, "seed": 0,
       "timesteps": 50_000, "num_envs": 4}


def programs(n: int, offset: int) -> list[str]:
    """Distinct programs (no compile cache can serve one from another)."""
    src = textwrap.dedent(inspect.getsource(ppo_clip))
    return [src.replace("1 + epsilon", f"1 + epsilon + {(offset + i) * 1e-3}") for i in range(n)]


def measure(concurrency: int, n: int, isolation: str, offset: int) -> dict:
    settings = PoolSettings(time_limit_s=600, isolation=isolation)
    with make_executor("local", settings, concurrency=concurrency) as ex:
        for w in ex.pool._idle["score"] + ex.pool._idle["trace"]:
            w.wait_ready()  # a run's pool is started once; its boot is not per candidate
        t0 = time.perf_counter()
        futures = [ex.submit({**JOB, "source": src}) for src in programs(n, offset)]
        results = [f.result() for f in futures]
        wall = time.perf_counter() - t0
    outcomes = [r.outcome for r in results]
    return {"concurrency": concurrency, "candidates": n, "wall_s": wall,
            "per_hour": n / wall * 3600, "outcomes": outcomes,
            "mean_eval_s": sum(r.timings.get("eval_wall_s", 0) for r in results) / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=6)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--isolation", default="auto", choices=["auto", "full", "none"])
    args = ap.parse_args()
    rows = []
    for i, c in enumerate(args.concurrency):
        rows.append(measure(c, args.candidates, args.isolation, offset=100 * i))
        print(f"  concurrency {c}: {rows[-1]['wall_s']:.1f} s for {args.candidates}", flush=True)
    ref = rows[0]["per_hour"]
    print(f"\n{'concurrency':>11}{'cands':>7}{'wall s':>9}{'eval s':>9}{'cand/h':>9}{'x ref':>7}")
    for r in rows:
        print(f"{r['concurrency']:>11}{r['candidates']:>7}{r['wall_s']:>9.1f}"
              f"{r['mean_eval_s']:>9.1f}{r['per_hour']:>9.0f}{r['per_hour'] / ref:>7.2f}")
    print(f"quickstart candidates (CartPole 50k steps x 2 seeds), {os.cpu_count()} cores; "
          f"reference: concurrency {rows[0]['concurrency']}")
    out = ROOT / "bench" / "results" / f"discovery_throughput-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"args": vars(args), "cores": os.cpu_count(),
                               "jail": probe().to_json(), "job": JOB, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
