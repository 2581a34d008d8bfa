import jax
import jax.numpy as jnp
import numpy as np
import pytest

from evaluators.learned_optimiser import (MOMENTUM_DECAYS, _dormancy, global_mean_centre,
                                          rolling_momentum_init, rolling_momentum_update,
                                          second_moment_normalise)


def test_rolling_momentum_matches_formula():
    rng = np.random.default_rng(0)
    params = {"w": jnp.zeros((3, 2))}
    moms = rolling_momentum_init(params)
    ref = np.zeros((3, 2, 6))
    for _ in range(5):
        g = rng.normal(size=(3, 2)).astype(np.float32)
        moms = rolling_momentum_update(moms, {"w": jnp.asarray(g)})
        for i, b in enumerate(MOMENTUM_DECAYS):
            ref[..., i] = b * ref[..., i] + (1 - b) * g
    np.testing.assert_allclose(np.asarray(moms["w"]), ref, rtol=1e-5, atol=1e-7)


def test_second_moment_normaliser_matches_formula():
    x = jax.random.normal(jax.random.key(0), (4, 5, 3)) * 7.0
    out = second_moment_normalise(x, axis=(0, 1))
    ref = np.asarray(x) / np.sqrt(1e-5 + np.mean(np.asarray(x) ** 2, axis=(0, 1), keepdims=True))
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-5)
    # each feature now has unit root-mean-square over the tensor
    np.testing.assert_allclose(np.sqrt(np.mean(np.asarray(out) ** 2, axis=(0, 1))), 1.0, rtol=1e-4)


def test_global_mean_centre_spans_actor_and_critic():
    ups = {"actor": {"a": jnp.ones((2, 2))}, "critic": {"b": jnp.full((4,), 3.0)}}
    out = global_mean_centre(ups)
    total = sum(float(jnp.sum(v)) for v in jax.tree.leaves(out))
    assert total == pytest.approx(0.0, abs=1e-5)
    assert float(out["actor"]["a"][0, 0]) == pytest.approx(1.0 - 2.0)


def test_dormancy_has_mean_one_per_layer():
    d = _dormancy({"Dense_0": jnp.asarray([0.0, 1.0, 3.0])})
    assert float(jnp.mean(d["Dense_0"])) == pytest.approx(1.0)
    assert float(d["Dense_0"][2]) == pytest.approx(3 * 3 / 4, rel=1e-5)
