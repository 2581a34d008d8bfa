"""Symbolic distillation: backends, the LPO constraint, grad-loss integration, the resumable method."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from evaluators.families import get_family
from sandbox.expressions import compile_expression, parse_expression
from workbench.config import SymbolicConfig, build_config
from workbench.evaluate import EvalRequest, evaluate_request
from workbench.methods.symbolic import SymbolicRefused, symbolic_search
from workbench.runs import create_run, execute
from workbench.symbolic import backends
from workbench.symbolic.backends import BackendUnavailable, search_settings, select_backend
from workbench.symbolic.constraints import integrate_many, zero_at_identity
from workbench.symbolic.data import RegressionData
from workbench.symbolic.operon_backend import OperonBackend
from workbench.teachers import Teacher

LPO_NAMES = get_family("lpo").symbol_names
QUICK = dict(backend="operon", generations=30, population_size=300, batch_size=1000, threads=2)


def _toy_data(seed: int = 0) -> RegressionData:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(3000, 2))
    y = 1.5 * X[:, 0] * X[:, 1] + 0.5 * X[:, 0]
    test = {"a": X[1000:, 0], "b": X[1000:, 1]}
    return RegressionData(("a", "b"), X[:1000], y[:1000], test, y[1000:], 0.0, 1.0, "update", {})


class _Toy:
    """A family-like object over symbols a, b (symbolic_search only needs name and symbols)."""

    name = "toy"
    symbol_names = ("a", "b")


def test_operon_fits_a_known_function():
    settings = search_settings("toy", SymbolicConfig(operators=["+", "-", "*"], maxsize=15, **QUICK))
    out = symbolic_search(_Toy(), _toy_data(), backend=OperonBackend(settings), seed=0)
    best = out.selected["best_loss"]
    assert best.loss < 1e-6, best
    fn = compile_expression(best.expression, ("a", "b"))
    assert float(fn(a=jnp.asarray(1.0), b=jnp.asarray(2.0))) == pytest.approx(3.5, abs=1e-3)
    # the front is a front: complexity up, loss down
    assert all(p.complexity < c.complexity and p.loss > c.loss for p, c in zip(out.front, out.front[1:]))


def test_operon_text_matches_its_own_evaluation():
    """pyoperon names its min/max nodes unexpectedly; what it prints must be what it computes."""
    import pyoperon as op
    from pyoperon.sklearn import SymbolicRegressor

    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 2))
    y = np.maximum(X[:, 0], 0.3) * X[:, 1]
    m = SymbolicRegressor(allowed_symbols="add,sub,mul,fmax,fmin,abs,constant,variable",
                          objectives=["r2", "length"], population_size=100, generations=10,
                          random_state=0, max_length=20)
    m.fit(X, y)
    for s in m.pareto_front_:
        text = op.InfixFormatter.Format(s["tree"], {h: "ab"[int(v[1:]) - 1] for h, v in m.variables_.items()}, 12)
        mine = np.asarray(compile_expression(text, ("a", "b"))(a=X[:, 0], b=X[:, 1]))
        np.testing.assert_allclose(mine, m.evaluate_model(s["tree"], X), rtol=1e-4, atol=1e-4)


def test_lpo_constraint_corrects_and_records():
    ok = zero_at_identity(parse_expression("Max(A*r_minus_1 - 0.2*Abs(A), 0)", LPO_NAMES))
    assert not ok.corrected and "zero at r = 1" in ok.note
    raw = zero_at_identity(parse_expression("A*r_minus_1 - 0.2*Abs(A)", LPO_NAMES))
    assert not raw.corrected and raw.expr == ok.expr  # negative at r = 1: the relu makes it 0
    near = zero_at_identity(parse_expression("Max(A*r_minus_1 - 0.2*Abs(A), -0.002) + 0.002", LPO_NAMES))
    assert near.corrected  # 0.002 at A = 0 only: the dense check catches what 3 points miss
    bad = zero_at_identity(parse_expression("A*r_minus_1 + 0.3*A + 0.1", LPO_NAMES))
    assert bad.corrected and "was not 0" in bad.note
    fixed = compile_expression(str(bad.expr), LPO_NAMES)
    for a in (1.0, -1.0, 0.5, 3.0):
        assert float(fixed(r=1.0, A=a, epsilon=0.2, log_r=0.0, r_minus_1=0.0)) == 0.0
    assert float(fixed(r=2.0, A=1.0, epsilon=0.2, log_r=np.log(2.0), r_minus_1=1.0)) == pytest.approx(1.0)


def test_grad_loss_integration_is_zero_at_one_and_differentiates_back():
    # the second is clipped in A(r - 1), which sympy integrates only split by the sign of A
    g_texts = ["A*tanh(3*r_minus_1) + 0.5*log_r", "Max(0, A*r_minus_1 - 0.2*Abs(A))"]
    results = integrate_many(g_texts, ("log_r", "r_minus_1", "A"))
    for g_text, res in zip(g_texts, results):
        assert res["ok"], res
        F = compile_expression(res["expr"], LPO_NAMES)
        g = compile_expression(g_text, LPO_NAMES)

        def drift(r, a):
            return F(r=r, A=a, epsilon=0.2, log_r=jnp.log(r), r_minus_1=r - 1.0)
        r, a = (x.ravel() for x in np.meshgrid(np.array([0.5, 0.7, 0.9, 1.1, 1.3, 2.2], np.float32),
                                               np.array([1.0, -1.0, 0.5, -2.0], np.float32)))
        np.testing.assert_allclose(jax.jit(jax.vmap(drift))(np.ones_like(a), a), 0.0, atol=1e-6)
        dF = jax.jit(jax.vmap(jax.grad(drift)))(r, a)
        want = g(r=r, A=a, epsilon=0.2, log_r=np.log(r), r_minus_1=r - 1)
        np.testing.assert_allclose(dF, want, rtol=1e-3, atol=1e-4, err_msg=g_text)
    (fail,) = integrate_many(["Max(A*r_minus_1 - 0.2*Abs(A), 0)*log_r**2*tanh(r_minus_1**3)"],
                             ("log_r", "r_minus_1", "A"), limit_s=5)
    assert not fail["ok"] and "rejected" in fail["reason"]


def test_auto_falls_back_to_operon_and_pysr_request_is_refused(monkeypatch):
    monkeypatch.setattr(backends, "pysr_status", lambda timeout_s=0: (False, "no julia here"))
    s = search_settings("lpo", SymbolicConfig())
    backend, why = select_backend("auto", s)
    assert backend.name == "operon" and "no julia here" in why
    with pytest.raises(BackendUnavailable, match="symbolic.backend=operon"):
        select_backend("pysr", s)


def _julia_starts_offline(timeout_s: float = 60) -> bool:
    """The test's own oracle: does Julia start through juliacall, offline (nothing downloaded)?"""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHON_JULIAPKG_OFFLINE": "yes", "JULIA_PKG_OFFLINE": "true"}
    try:
        out = subprocess.run([sys.executable, "-c", "from juliacall import Main as jl; print(jl.seval('1 + 1'))"],
                             env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False
    return out.returncode == 0 and out.stdout.split()[-1:] == ["2"]


def _assert_selection_follows(ok: bool, why: str) -> None:
    """`auto` picks what the probe said, and names its reason; `pysr` is refused with it."""
    settings = search_settings("lpo", SymbolicConfig())
    backend, reason = select_backend("auto", settings)
    if ok:
        assert backend.name == "pysr" and why in reason
    else:
        assert backend.name == "operon" and why in reason
        with pytest.raises(BackendUnavailable) as err:
            select_backend("pysr", settings)
        assert why in str(err.value)


def test_real_pysr_probe_says_why():
    """The real probe on this machine: without pysr it says the package is missing; with pysr,
    it is usable exactly when Julia starts offline, and says why not otherwise."""
    import importlib.util

    ok, why = backends.pysr_status(timeout_s=60)
    if importlib.util.find_spec("pysr") is None:
        assert (ok, why) == (False, "the pysr package is not installed (it also needs a working Julia)")
    elif _julia_starts_offline():
        assert ok and why == "pysr imports and Julia starts"
    else:  # pysr installed, Julia not there and not downloadable
        assert not ok and ("Julia did not start" in why), why
    _assert_selection_follows(ok, why)


def test_pysr_installed_without_julia_says_julia_did_not_start(tmp_path, monkeypatch):
    """pysr importable but Julia cannot be fetched (offline): the probe runs, and reports the
    child's last error line, not a bare 'unavailable'."""
    import os

    (tmp_path / "pysr").mkdir()
    (tmp_path / "pysr" / "__init__.py").write_text("")
    (tmp_path / "juliacall").mkdir()
    (tmp_path / "juliacall" / "__init__.py").write_text(
        "raise RuntimeError('juliapkg is offline: cannot download Julia 1.10')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    ok, why = backends.pysr_status(timeout_s=60)
    assert not ok
    assert why == ("pysr is installed but Julia did not start "
                   "(RuntimeError: juliapkg is offline: cannot download Julia 1.10)"), why
    _assert_selection_follows(ok, why)


def test_open_is_refused(tmp_path):
    config = build_config({"family": "open", "method": "symbolic", "envs": ["cartpole"],
                           "symbolic": {"backend": "operon"}})
    store = create_run(config, tmp_path / "run")
    with pytest.raises(SymbolicRefused, match="recurrent"):
        execute(config, store)
    assert store.candidates() == []
    from workbench.config import load_config
    assert load_config("configs/cpu/open_symbolic.yaml").family == "open"


def _tiny_config(epochs: int):
    return build_config({
        "family": "lpo", "method": "symbolic", "envs": ["cartpole"], "seeds": 1, "timesteps": 2000,
        "num_envs": 4,
        "symbolic": {**QUICK, "epochs": epochs, "points": 4096, "maxsize": 12, "eval_seeds": 1,
                     "operators": ["+", "-", "*", "max", "abs"], "generations": 20,
                     "population_size": 200}})


def _with_network_teacher(store) -> int:
    """A stored network candidate (the zero LPO network, i.e. PPO) as this run's teacher."""
    from workbench.params_io import save_params

    fam = get_family("lpo")
    save_params(store.run_dir / "params" / "teacher.npz", fam.init_network(jax.random.key(0)), "lpo", 128)
    cid = store.add_candidate(method="es", kind="network", label="teacher",
                              params_path="params/teacher.npz", hsize=128)
    store.finish_candidate(cid, "ok", fitness=0.5)
    return cid


def test_tiny_run_stores_front_and_scored_candidates_then_resumes(tmp_path):
    """Teacher from another run (as ES -> symbolic in a study): lineage stays inside this store."""
    from workbench.store import RunStore

    teacher_id = _with_network_teacher(RunStore(tmp_path / "es"))
    base = _tiny_config(epochs=1)
    config = base.model_copy(update={"symbolic": base.symbolic.model_copy(
        update={"teacher": str(tmp_path / "es")})})
    store = create_run(config, tmp_path / "run")
    assert execute(config, store) == "finished"
    (copy,) = [c for c in store.candidates() if c.info.get("role") == "teacher"]
    assert copy.info["origin"] == {"run": str((tmp_path / "es").resolve()), "candidate": teacher_id}
    assert copy.kind == "network" and (store.run_dir / copy.params_path).is_file()
    symbolic = [c for c in store.candidates() if c.kind == "symbolic"]
    assert symbolic and all(c.outcome != "pending" for c in symbolic)
    assert all(c.parents == [copy.id] for c in symbolic)
    assert any(c.outcome == "ok" and c.fitness is not None for c in symbolic)
    assert all(c.info["backend"] == "operon" and c.info["selection"] for c in symbolic)
    fronts = [a for a in store.artefacts() if a["name"].startswith("symbolic front")]
    assert len(fronts) == 1
    body = json.loads((store.run_dir / fronts[0]["path"]).read_text())
    assert body["front"] and {"complexity", "loss", "expression"} <= set(body["front"][0])
    assert store.get_state("symbolic.epoch") == 1
    assert store.get_state("symbolic.backend")["backend"] == "operon"
    # resume with more epochs: continues at epoch 2, does not redo epoch 1
    more = config.model_copy(update={"symbolic": config.symbolic.model_copy(update={"epochs": 2})})
    assert execute(more, store) == "finished"
    assert store.get_state("symbolic.epoch") == 2
    fronts = [a for a in store.artefacts() if a["name"].startswith("symbolic front")]
    assert [json.loads((store.run_dir / a["path"]).read_text())["epoch"] for a in fronts] == [1, 2]
    texts = [c.source for c in store.candidates() if c.kind == "symbolic"]
    assert len(texts) == len(set(texts))  # identical expressions are stored once
    assert len([c for c in store.candidates() if c.info.get("role") == "teacher"]) == 1


def test_grad_loss_search_gives_zero_drift_at_identity():
    fam = get_family("lpo")
    teacher = Teacher(fam.init_network(jax.random.key(0), zero=True), fam.default_hsize, "warm_start", "ppo")
    cfg = SymbolicConfig(**{**QUICK, "generations": 10, "population_size": 100}, points=4096,
                         maxsize=10, grad_loss=True, operators=["+", "-", "*", "tanh"])
    out = symbolic_search(fam, teacher, cfg, seed=0)
    # some fitted gradient was integrated, accepted and scored on held-out data (not all rejected)
    assert out.front, [(r.backend_expression, r.reason) for r in out.rejected]
    assert out.selected["best_loss"] in out.front
    for m in out.front:
        fn = compile_expression(m.expression, LPO_NAMES)
        for a in (1.0, -1.0, 0.5):
            assert abs(float(fn(r=1.0, A=a, epsilon=0.2, log_r=0.0, r_minus_1=0.0))) < 1e-6
        assert np.isfinite(m.loss) and m.value_loss is not None and np.isfinite(m.value_loss)
        assert any("gradient" in n for n in m.notes)
    for r in out.rejected:
        assert r.reason


def test_must_show_ppo_clip_drift_is_recovered_within_5_percent(tmp_path):
    """Distil PPO's clip drift (teacher warm-start); the chosen expression's held-out RL score on
    CartPole is within 5% of PPO's, both measured here with the same seeds."""
    config = build_config({
        "family": "lpo", "method": "symbolic", "envs": ["cartpole"], "timesteps": 50_000,
        "num_envs": 4, "symbolic": {**QUICK, "teacher": "warm-start", "epochs": 1, "points": 65536,
                                    "batch_size": 2000, "maxsize": 20, "generations": 50,
                                    "population_size": 500, "eval_seeds": 4,
                                    "operators": ["+", "-", "*", "max", "min", "abs"]}})
    store = create_run(config, tmp_path / "run")
    execute(config, store)
    best = store.get_state("symbolic.front")["selected"]["best_loss"]
    row = next(c for c in store.candidates() if c.source == best)
    ppo = evaluate_request(EvalRequest(family="lpo", envs=["cartpole"], seeds=4, seed=config.eval_seed,
                                       timesteps=50_000, num_envs=4))
    print(f"\nrecovered: {best}\nsymbolic score {row.fitness:.4f}  PPO score {ppo.fitness:.4f}")
    assert row.outcome == "ok" and ppo.outcome == "ok"
    assert abs(row.fitness - ppo.fitness) <= 0.05 * abs(ppo.fitness)
