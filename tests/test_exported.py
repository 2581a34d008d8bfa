"""The tracer/scorer bridge: exported candidates behave like the Python function, under vmap, grad
and scan; modules that reach outside the computation, or do not match the call, are refused."""

import base64

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

from sandbox.exported import CallRecorder, CandidateProxy, ExportError, export_calls


def ppo_clip(ratio, advantage, epsilon):
    ratio_clip = ratio - jnp.clip(ratio, 1 - epsilon, 1 + epsilon)
    return jax.nn.relu(ratio_clip * advantage)


def _train(drift, key):
    """A small PPO-like inner loop: the drift inside a loss, differentiated, under scan."""
    def step(w, k):
        k1, k2 = jax.random.split(k)
        r = jnp.exp(jax.random.normal(k1, (32,)) * 0.3) * w
        a = jax.random.normal(k2, (32,))
        loss = lambda w: jnp.mean(r * w * a - drift(r * w, a, 0.2))
        return w - 0.1 * jax.grad(loss)(w), loss(w)
    return jax.lax.scan(step, jnp.ones((32,)), jax.random.split(key, 20))


def _exported(fn, trace):
    recorder = CallRecorder(fn)
    trace(recorder)
    return CandidateProxy(export_calls(recorder, jax.default_backend()), jax.default_backend())


def test_proxy_is_bit_identical_under_vmap_vmap_grad_scan():
    proxy = _exported(ppo_clip, lambda rec: jax.eval_shape(lambda k: _train(rec, k), jax.random.key(0)))
    keys = jax.random.split(jax.random.key(1), 6).reshape(2, 3)
    run = lambda drift: jax.jit(jax.vmap(jax.vmap(lambda k: _train(drift, k))))(keys)
    native, bridged = run(ppo_clip), run(proxy)
    for a, b in zip(jax.tree.leaves(native), jax.tree.leaves(bridged)):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert len(proxy.signatures) == 1


def test_calls_not_traced_are_refused():
    proxy = _exported(ppo_clip, lambda rec: jax.eval_shape(lambda r, a: rec(r, a, 0.2), jnp.ones(8), jnp.ones(8)))
    assert proxy(jnp.ones(8), jnp.ones(8), 0.2).shape == (8,)
    with pytest.raises(ExportError, match="did not export"):
        proxy(jnp.ones(9), jnp.ones(9), 0.2)
    with pytest.raises(ExportError, match="did not export"):
        proxy(jnp.ones(8), jnp.ones(8), 0.3)  # a static argument is part of the signature


def test_gradient_without_gradient_module_is_refused():
    proxy = _exported(ppo_clip, lambda rec: jax.eval_shape(lambda r, a: rec(r, a, 0.2), jnp.ones(8), jnp.ones(8)))
    with pytest.raises(ExportError, match="no gradient"):
        jax.grad(lambda r: proxy(r, jnp.ones(8), 0.2).sum())(jnp.ones(8))


def _bundle_for(fn, avals):
    (b,) = export.symbolic_shape("b")
    batched = [jax.ShapeDtypeStruct((b,) + a.shape, a.dtype) for a in avals]
    platform = jax.default_backend()
    enc = lambda e: base64.b64encode(e.serialize()).decode()
    return {"f": enc(export.export(jax.jit(fn), platforms=(platform,))(*avals)),
            "fb": enc(export.export(jax.jit(jax.vmap(fn)), platforms=(platform,))(*batched))}


def test_host_callbacks_do_not_export():
    """A program that calls back into Python cannot even leave the tracer."""
    def leak(r, a, eps):
        jax.debug.callback(lambda x: None, r)
        return r * a
    recorder = CallRecorder(leak)
    jax.eval_shape(lambda r, a: recorder(r, a, 0.2), jnp.ones(8), jnp.ones(8))
    with pytest.raises(ExportError, match="exporting the function failed"):
        export_calls(recorder, jax.default_backend())


def test_custom_call_module_is_refused():
    """A crafted module with a custom call (here LAPACK's, reachable from jnp.linalg) is refused
    by the scorer, whatever the tracer claims."""
    def solve(r, a):
        return jnp.linalg.eigh(jnp.outer(r, a) + jnp.eye(8))[0]
    avals = [jax.ShapeDtypeStruct((8,), jnp.float32)] * 2
    with pytest.raises(ExportError, match="custom call"):
        CandidateProxy([{"key": "k", "modules": _bundle_for(solve, avals)}], jax.default_backend())


def test_modules_that_do_not_match_the_call_are_refused():
    """A tracer that hands over modules of another shape under a real key gets nothing scored."""
    honest = _exported(ppo_clip, lambda rec: jax.eval_shape(lambda r, a: rec(r, a, 0.2), jnp.ones(8), jnp.ones(8)))
    key = honest.signatures[0]
    wrong = _bundle_for(lambda r, a: r * a, [jax.ShapeDtypeStruct((4,), jnp.float32)] * 2)
    proxy = CandidateProxy([{"key": key, "modules": wrong}], jax.default_backend())
    with pytest.raises(ExportError, match="takes"):
        proxy(jnp.ones(8), jnp.ones(8), 0.2)


def test_garbage_and_incomplete_bundles_are_refused():
    with pytest.raises(ExportError, match="deserialise"):
        CandidateProxy([{"key": "k", "modules": {"f": "bm90IGEgbW9kdWxl", "fb": "eA=="}}], "cpu")
    with pytest.raises(ExportError, match="needs the modules"):
        CandidateProxy([{"key": "k", "modules": {"f": "eA=="}}], "cpu")
    avals = [jax.ShapeDtypeStruct((8,), jnp.float32)] * 2
    bundle = _bundle_for(lambda r, a: r * a, avals)
    with pytest.raises(ExportError, match="not gpu|for"):
        CandidateProxy([{"key": "k", "modules": bundle}], "gpu")


def test_tuple_outputs_and_integer_inputs():
    """The optimiser families' programs return (update, carry) and take integer counters."""
    def adamish(g, var, iteration):
        var = 0.9 * var + 0.1 * g ** 2
        return g / jnp.sqrt(var + 1e-8) * (1.0 / iteration), var
    args = (jnp.ones((3, 2)), jnp.zeros((3, 2)), jnp.asarray(3, jnp.int32))
    proxy = _exported(adamish, lambda rec: jax.eval_shape(rec, *args))
    batched = jax.vmap(proxy, in_axes=(0, 0, None))(jnp.stack([args[0]] * 4),
                                                    jnp.stack([args[1]] * 4), args[2])
    native = jax.vmap(adamish, in_axes=(0, 0, None))(jnp.stack([args[0]] * 4),
                                                     jnp.stack([args[1]] * 4), args[2])
    for a, b in zip(jax.tree.leaves(native), jax.tree.leaves(batched)):
        assert np.array_equal(np.asarray(a), np.asarray(b))
