import jax
import jax.numpy as jnp
import numpy as np
import pytest

from evaluators.envs import get_env_config
from evaluators.families import (FAMILIES, Candidate, CandidateError, SymbolicDefaults, get_family,
                                 ppo_clip_drift)
from evaluators.learned_optimiser import UpdateContext
from evaluators.networks import init_agent, mlp_forward
from sandbox.expressions import compile_expression

ENV = get_env_config("cartpole")


def _ratio_adv(n=4096, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    ratio = jnp.exp(jax.random.normal(k1, (n,)) * 0.3)
    adv = jax.random.normal(k2, (n,))
    return ratio, adv


def test_zero_lpo_network_reproduces_the_ppo_objective_exactly():
    lpo = get_family("lpo")
    algo = lpo.algorithm(lpo.network(), ENV)
    meta = lpo.init_network(jax.random.key(0))
    ratio, adv = _ratio_adv()
    eps = ENV.clip_eps

    def mirror_loss(r):
        return -jnp.mean(r * adv - algo.drift(meta, r, adv, eps))

    def ppo_loss(r):  # PPO's clipped surrogate written the standard way
        return -jnp.mean(jnp.minimum(r * adv, jnp.clip(r, 1 - eps, 1 + eps) * adv))

    assert float(mirror_loss(ratio)) == float(ppo_loss(ratio))
    np.testing.assert_array_equal(np.asarray(jax.grad(mirror_loss)(ratio)),
                                  np.asarray(jax.grad(ppo_loss)(ratio)))


def test_lpo_network_is_zero_at_ratio_one_whatever_the_weights():
    lpo = get_family("lpo")
    algo = lpo.algorithm(lpo.network(), ENV)
    meta = lpo.init_network(jax.random.key(3), zero=False)
    adv = jnp.linspace(-3, 3, 11)
    drift = algo.drift(meta, jnp.ones_like(adv), adv, 0.2)
    np.testing.assert_array_equal(np.asarray(drift), 0.0)


def test_lpo_warm_start_program_and_expression_match_ppo_drift():
    lpo = get_family("lpo")
    ratio, adv = _ratio_adv()
    ref = ppo_clip_drift(ratio, adv, 0.2)
    code = lpo.algorithm(lpo.warm_start(), ENV).drift({}, ratio, adv, 0.2)
    expr = compile_expression("relu((r - Min(Max(r, 1 - epsilon), 1 + epsilon)) * A)", lpo.symbol_names)
    sym = lpo.algorithm(Candidate("symbolic", fn=expr), ENV).drift({}, ratio, adv, 0.2)
    np.testing.assert_allclose(np.asarray(code), np.asarray(ref), atol=1e-7)
    np.testing.assert_allclose(np.asarray(sym), np.asarray(ref), atol=1e-6)


def _agent_step_inputs(seed=0):
    key = jax.random.key(seed)
    params = init_agent(key, 4, 2, 16, continuous=False)
    grads = jax.tree.map(lambda p: jax.random.normal(jax.random.key(7), p.shape), params)
    obs = jax.random.normal(jax.random.key(1), (32, 4))
    stats = {"actor": mlp_forward(params["actor"], obs, "tanh")[1],
             "critic": mlp_forward(params["critic"], obs, "tanh")[1]}
    ctx = UpdateContext(train_prop=jnp.asarray(0.3), batch_prop=jnp.asarray(0.5),
                        activations=stats, key=jax.random.key(2))
    return params, grads, ctx


@pytest.mark.parametrize("name", ["open", "open_ff", "no_features"])
def test_zero_optimiser_networks_produce_zero_updates(name):
    fam = get_family(name)
    algo = fam.algorithm(fam.network(), ENV)
    meta = fam.init_network(jax.random.key(0), zero=True)
    params, grads, ctx = _agent_step_inputs()
    state = algo.opt_init(meta, params, jax.random.key(0))
    new_params, state = algo.opt_update(meta, grads, state, params, ctx)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(new_params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_zero_output_es_start_is_ppo_and_breaks_the_antithetic_symmetry():
    """From the all-zero mean, w and -w are the same LPO network: an antithetic pair scores
    identically and ES gets no gradient.  The zero-output start is still exactly PPO, but not
    symmetric."""
    lpo = get_family("lpo")
    algo = lpo.algorithm(lpo.network(8), ENV)
    ratio, adv = _ratio_adv()
    noise = jax.tree.map(lambda x: 0.1 * jax.random.normal(jax.random.key(5), x.shape),
                         lpo.init_network(jax.random.key(0), 8))

    def pair(mean):
        plus = jax.tree.map(jnp.add, mean, noise)
        minus = jax.tree.map(jnp.subtract, mean, noise)
        return (np.asarray(algo.drift(plus, ratio, adv, 0.2)),
                np.asarray(algo.drift(minus, ratio, adv, 0.2)))

    zero = lpo.es_start(jax.random.key(1), 8, "zero")
    start = lpo.es_start(jax.random.key(1), 8, "auto")
    np.testing.assert_array_equal(*pair(zero))
    plus, minus = pair(start)
    assert np.abs(plus - minus).max() > 1e-4
    np.testing.assert_array_equal(np.asarray(algo.drift(start, ratio, adv, 0.2)),
                                  np.asarray(ppo_clip_drift(ratio, adv, 0.2)))
    assert float(jnp.abs(start["w1"]).max()) > 0


@pytest.mark.parametrize("name", ["open", "open_ff", "no_features"])
def test_zero_output_es_start_of_optimiser_networks_gives_zero_updates(name):
    fam = get_family(name)
    algo = fam.algorithm(fam.network(), ENV)
    meta = fam.es_start(jax.random.key(0), None, "zero_output")
    assert any(float(jnp.abs(x).max()) > 0 for x in jax.tree.leaves(meta))
    params, grads, ctx = _agent_step_inputs()
    state = algo.opt_init(meta, params, jax.random.key(0))
    new_params, _ = algo.opt_update(meta, grads, state, params, ctx)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(new_params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("name", ["open", "open_ff", "no_features"])
def test_random_optimiser_networks_move_parameters_with_zero_mean(name):
    fam = get_family(name)
    algo = fam.algorithm(fam.network(), ENV)
    meta = fam.init_network(jax.random.key(0), zero=False)
    params, grads, ctx = _agent_step_inputs()
    state = algo.opt_init(meta, params, jax.random.key(0))
    new_params, _ = algo.opt_update(meta, grads, state, params, ctx)
    deltas = [np.asarray(a - b) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(new_params))]
    total = sum(d.sum() for d in deltas)
    assert any(np.abs(d).max() > 0 for d in deltas)
    assert abs(total) < 1e-4 * sum(np.abs(d).sum() for d in deltas)  # globally mean-centred


def test_sgd_program_update_is_centred_gradient_step():
    fam = get_family("no_features")
    algo = fam.algorithm(fam.warm_start(), ENV)
    params, grads, ctx = _agent_step_inputs()
    state = algo.opt_init({}, params, jax.random.key(0))
    new_params, _ = algo.opt_update({}, grads, state, params, ctx)
    # reference: clip each network's gradient to norm 0.5, scale by the annealed SGD lr, centre
    clipped = {}
    for net, g in grads.items():
        norm = np.sqrt(sum(float(jnp.sum(x ** 2)) for x in jax.tree.leaves(g)))
        clipped[net] = jax.tree.map(lambda x: x * min(1.0, 0.5 / norm), g)
    lr = ENV.sgd_lr * (1 - 0.3)
    ups = jax.tree.map(lambda g: g * lr, clipped)
    mean = sum(float(jnp.sum(u)) for u in jax.tree.leaves(ups)) / sum(u.size for u in jax.tree.leaves(ups))
    for p, u, n in zip(jax.tree.leaves(params), jax.tree.leaves(ups), jax.tree.leaves(new_params)):
        np.testing.assert_allclose(np.asarray(n), np.asarray(p - (u - mean)), atol=1e-7)


def test_open_refuses_symbolic_candidates_with_the_reason():
    fam = get_family("open")
    with pytest.raises(CandidateError, match="recurrent"):
        fam.algorithm(Candidate("symbolic", fn=lambda **kw: 0.0), ENV)


def test_network_parameter_counts_match_the_spec():
    counts = {name: sum(x.size for x in jax.tree.leaves(FAMILIES[name].init_network(jax.random.key(0))))
              for name in FAMILIES}
    assert counts["lpo"] == 1152
    assert counts["open_ff"] == 707
    assert counts["no_features"] == 514
    assert 1150 <= counts["open"] <= 1250  # ≈680 GRU + 531 MLP (SPEC counts by hand)


def test_every_family_implements_the_hooks_its_choices_need():
    """The hooks other modules call instead of switching on names: each value is one the callers
    know, and what a value promises (the methods it is read through) is there."""
    for fam in FAMILIES.values():
        assert fam.teacher_inputs in ("ratio_advantage", "parameters", "trajectories"), fam.name
        if fam.teacher_inputs == "ratio_advantage":
            assert callable(fam.network_drift) and callable(fam.symbol_values), fam.name
        else:
            assert callable(fam.network_rule), fam.name
        assert fam.report_figure in (None, "drift"), fam.name
        if fam.report_figure == "drift":
            assert callable(fam.network_drift) and callable(fam.expression_drift), fam.name
        assert isinstance(fam.symbolic_defaults, SymbolicDefaults), fam.name
        if fam.zero_network_is_warm_start:  # the zero network must then act as the warm start
            zero = fam.algorithm(fam.network(), ENV)
            warm = fam.algorithm(fam.warm_start(), ENV)
            ratio, adv = _ratio_adv(256)
            meta = fam.init_network(jax.random.key(0), zero=True)
            np.testing.assert_array_equal(np.asarray(zero.drift(meta, ratio, adv, ENV.clip_eps)),
                                          np.asarray(warm.drift({}, ratio, adv, ENV.clip_eps)))


def test_lpo_hooks_differ_from_the_optimisers():
    lpo, others = FAMILIES["lpo"], [f for n, f in FAMILIES.items() if n != "lpo"]
    assert lpo.teacher_inputs == "ratio_advantage" and lpo.report_figure == "drift"
    assert lpo.zero_network_is_warm_start
    assert lpo.symbolic_defaults != SymbolicDefaults() and lpo.symbolic_defaults.maxsize == 40
    assert FAMILIES["open"].teacher_inputs == "trajectories"  # recurrent: distilled by unrolls
    for fam in others:
        assert fam.report_figure is None and not fam.zero_network_is_warm_start, fam.name
        assert fam.symbolic_defaults == SymbolicDefaults(), fam.name
        assert fam.teacher_inputs == ("trajectories" if fam.code_returns_carry else "parameters")
