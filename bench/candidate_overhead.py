"""Per-candidate time split of the sandbox: static screen, worker start (wait), quick checks,
compile, train — and the overhead (everything but train) as a share of train time.

    python bench/candidate_overhead.py [--candidates 4] [--timesteps 100000] [--seeds 4]
        [--compile-cache DIR] [--same-program]

`--compile-cache DIR` gives the workers JAX's persistent compilation cache (as runs do, under
<workspace>/.jax-cache/sandbox); `--same-program` evaluates one program every time (re-evaluations:
the warm start of each run, resumed candidates), where the cache can help; distinct programs
(the default) lower to different HLO and cannot.

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

from evaluators.families.lpo import ppo_clip  # noqa: E402
from sandbox.pool import SandboxPool  # noqa: E402
from workbench.config import SandboxConfig  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--timesteps", type=int, default=100_000)  # configs/cpu scale
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--num-envs", type=int, default=8)
    ap.add_argument("--compile-cache", metavar="DIR", default=None)
    ap.add_argument("--same-program", action="store_true")
    args = ap.parse_args()
    src = textwrap.dedent(inspect.getsource(ppo_clip))
    cfg = SandboxConfig()
    rows = []
    with SandboxPool(spares=1, time_limit_s=cfg.time_limit_s, memory_limit_mb=cfg.memory_limit_mb,
                     compile_cache_dir=args.compile_cache) as pool:
        time.sleep(0)  # the first worker is started here, as in a run
        for i in range(args.candidates):
            job = {"family": "lpo", "kind": "code", "source": src if args.same_program else src.replace("1 + epsilon", f"1 + epsilon + {i * 1e-3}"),
                   "envs": ["cartpole"], "seeds": args.seeds, "seed": 0, "timesteps": args.timesteps,
                   "num_envs": args.num_envs}
            t0 = time.perf_counter()
            r = pool.evaluate(job)
            total = time.perf_counter() - t0
            t = r.timings
            row = {"candidate": i, "outcome": r.outcome, "screen_s": t.get("screen_s", 0.0),
                   "wait_s": t.get("wait_s", 0.0), "checks_s": t.get("checks_s", 0.0),
                   "compile_s": t.get("compile_s", 0.0), "train_s": t.get("train_s", 0.0), "total_s": total}
            row["overhead_s"] = total - row["train_s"]
            row["overhead_no_compile_s"] = row["overhead_s"] - row["compile_s"]
            row["overhead_ratio"] = row["overhead_s"] / max(row["train_s"], 1e-9)
            row["overhead_no_compile_ratio"] = row["overhead_no_compile_s"] / max(row["train_s"], 1e-9)
            rows.append(row)
    cols = ["candidate", "outcome", "screen_s", "wait_s", "checks_s", "compile_s", "train_s", "total_s",
            "overhead_ratio", "overhead_no_compile_ratio"]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    steady = rows[1:] or rows
    summary = {k: sum(r[k] for r in steady) / len(steady) for k in cols[2:]}
    print("mean over candidates after the first:", json.dumps({k: round(v, 3) for k, v in summary.items()}))
    out = ROOT / "bench" / "results" / f"candidate_overhead-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows, "steady_mean": summary}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
