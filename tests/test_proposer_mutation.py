"""The mutation proposer is a real search: it improves on a cheap synthetic target (no RL)."""

import inspect
import random

import jax
import jax.numpy as jnp
import numpy as np

from evaluators.families.lpo import ppo_clip
from sandbox.checks import ProgramError, load_program, screen_source
from workbench.proposers.mutation import MutationProposer, select_parents
from workbench.proposers.program_hash import program_hash

SIG = ("ratio", "advantage", "epsilon")
R = jnp.exp(jax.random.uniform(jax.random.key(0), (512,), minval=-0.5, maxval=0.5))
A = jax.random.normal(jax.random.key(1), (512,))


def target(ratio, advantage, epsilon):
    return 1.7 * jax.nn.relu((ratio - jnp.clip(ratio, 1 - epsilon, 1 + epsilon)) * advantage) \
        + 0.5 * jnp.square(ratio - 1)


Y = np.asarray(target(R, A, 0.2))


def fitness(src: str) -> float:
    try:
        out = np.asarray(jnp.broadcast_to(load_program(src, SIG)(R, A, 0.2), R.shape))
    except (ProgramError, Exception):
        return -np.inf
    err = float(np.mean((out - Y) ** 2))
    return -err if np.isfinite(err) else -np.inf


def test_hash_ignores_names_and_formatting():
    a = "def f(ratio, advantage, epsilon):\n    '''doc'''\n    return ratio * 2\n"
    b = "def g(ratio, advantage, epsilon):\n    return (ratio *   2)  # c\n"
    assert program_hash(a) == program_hash(b) != program_hash(a.replace("2", "3"))


def test_children_keep_signature_and_differ():
    src = inspect.getsource(ppo_clip)
    prop = MutationProposer(SIG, seed=3)
    seen = {program_hash(src)}
    for _ in range(30):
        p = prop.propose([(1, src), (2, src)], seen)
        assert p.code is not None
        screen_source(p.code, SIG)
        assert program_hash(p.code) not in seen
        seen.add(program_hash(p.code))


def test_search_improves_on_synthetic_target():
    warm = inspect.getsource(ppo_clip)
    prop = MutationProposer(SIG, seed=0)
    rng = random.Random(0)
    archive = [(0, warm, fitness(warm), 0)]
    seen = {program_hash(warm)}
    for i in range(1, 151):
        parents = select_parents(archive, rng, k=2)
        child = prop.propose(parents, seen)
        if child.code is None:
            continue
        seen.add(program_hash(child.code))
        f = fitness(child.code)
        if np.isfinite(f):
            archive.append((i, child.code, f, parents[0][0] if parents[0][0] else i))
    best = max(a[2] for a in archive)
    assert best > archive[0][2] * 0.5, (best, archive[0][2])  # error at least halved
