"""Other evosax strategies by name: they climb, checkpoint exactly, and bad names are explained."""

import numpy as np
import pytest

from workbench.config import ConfigError, build_config
from workbench.methods.es import make_strategy

TARGET = np.array([0.5, -0.3, 0.2], np.float32)


def _objective(pop):
    return -np.sum((pop - TARGET) ** 2, axis=1)


@pytest.mark.parametrize("name", ["SNES", "Open_ES", "Sep_CMA_ES"])
def test_evosax_strategy_climbs(name):
    cfg = build_config({"es": {"strategy": name, "popsize": 16, "sigma": 0.1, "lr": 0.05,
                               "sigma_limit": 0.01}}).es
    es = make_strategy(cfg, 3)
    state = es.init(np.zeros(3, np.float32), cfg.sigma, cfg.lr, seed=1)
    start = np.linalg.norm(state.mean - TARGET)
    for _ in range(150):
        pop, handle, state, _ = es.ask(state)
        state = es.tell(state, handle, _objective(pop))
    assert state.generation == 150
    assert np.linalg.norm(state.mean - TARGET) < 0.25 * start


def test_evosax_checkpoint_round_trip_continues_identically():
    cfg = build_config({"es": {"strategy": "SNES", "popsize": 8}}).es
    es = make_strategy(cfg, 4)
    state = es.init(np.zeros(4, np.float32), cfg.sigma, cfg.lr, seed=3)
    for _ in range(3):
        pop, h, state = es.ask(state)[:3]
        state = es.tell(state, h, _objective(pop[:, :3]))
    restored = make_strategy(cfg, 4).restore(state.to_arrays())  # a fresh process would do this

    def advance(strategy, s):
        for _ in range(3):
            pop, h, s = strategy.ask(s)[:3]
            s = strategy.tell(s, h, _objective(pop[:, :3]))
        return s
    a, b = advance(es, state), advance(make_strategy(cfg, 4), restored)
    np.testing.assert_array_equal(a.mean, b.mean)
    assert a.best_fitness == b.best_fitness


def test_unknown_strategy_names_the_choices():
    with pytest.raises(ConfigError, match=r"es.strategy.*unknown strategy 'NoSuchES'.*SNES"):
        build_config({"es": {"strategy": "NoSuchES"}})
