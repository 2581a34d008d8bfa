import jax.numpy as jnp
import numpy as np
import pytest

from evaluators.families import get_family
from sandbox.checks import ProgramError, load_program, screen_source
from sandbox.expressions import ExpressionError, compile_expression, complexity, parse_expression

LPO_SIG = get_family("lpo").code_signature

ORIGINAL_STYLE = '''
import jax.numpy as jnp
def ppo_clip(ratio: float, advantage: float, epsilon: float) -> jnp.ndarray:
    ratio_clip = ratio - jnp.clip(ratio, a_min = 1-epsilon, a_max = 1+epsilon)
    return nn.relu(ratio_clip * advantage)
'''


def test_programs_written_for_the_original_run_unchanged():
    f = load_program(ORIGINAL_STYLE, LPO_SIG)
    out = f(jnp.asarray([0.5, 1.0, 1.5]), jnp.ones(3), 0.2)
    np.testing.assert_allclose(np.asarray(out), [0.0, 0.0, 0.3], atol=1e-6)


@pytest.mark.parametrize("source, kind, needle", [
    ("import os\ndef f(ratio, advantage, epsilon):\n    return ratio", "forbidden", "os"),
    ("def f(ratio, advantage, epsilon):\n    return open('x')", "forbidden", "open"),
    ("def f(ratio, advantage, epsilon):\n    return ratio.__class__", "forbidden", "__class__"),
    ("def f(ratio, advantage, epsilon):\n    return __import__('os')", "forbidden", "__import__"),
    ("def f(r, a):\n    return r", "invalid", "expected f(ratio, advantage, epsilon)"),
    ("def f(ratio, advantage, epsilon):\n  return (", "invalid", "syntax error"),
    ("x = 1", "invalid", "no function"),
    ("print('hi')\ndef f(ratio, advantage, epsilon):\n    return ratio", "invalid", "import time"),
])
def test_bad_programs_are_rejected_with_a_reason(source, kind, needle):
    with pytest.raises(ProgramError) as err:
        load_program(source, LPO_SIG)
    assert err.value.kind == kind and needle in str(err.value)


def test_helpers_and_constants_are_allowed_and_last_function_is_the_candidate():
    src = "SCALE = 2.0\ndef helper(x):\n    return x * SCALE\ndef drift(ratio, advantage, epsilon):\n    return helper(ratio - 1.0) ** 2"
    assert screen_source(src, LPO_SIG).function_name == "drift"
    assert float(load_program(src, LPO_SIG)(jnp.asarray(2.0), 0.0, 0.2)) == pytest.approx(4.0)


def test_expressions_compile_to_jax_and_report_unknowns():
    names = get_family("lpo").symbol_names
    f = compile_expression("square(r_minus_1) * Abs(A) + relu(log_r)", names)
    r = jnp.asarray([0.5, 2.0])
    out = f(r=r, A=jnp.asarray([-1.0, 2.0]), epsilon=0.2, log_r=jnp.log(r), r_minus_1=r - 1)
    np.testing.assert_allclose(np.asarray(out), [0.25, 2.0 + np.log(2.0)], rtol=1e-6)
    with pytest.raises(ExpressionError, match="unknown symbol.*ratio"):
        compile_expression("ratio * A", names)
    with pytest.raises(ExpressionError, match="unknown function.*foo"):
        compile_expression("foo(r)", names)
    with pytest.raises(ExpressionError, match="cannot parse"):
        compile_expression("r +* A", names)
    assert complexity(parse_expression("r*A + 1", names)) >= 4


SIG = "def f(ratio, advantage, epsilon):\n"


@pytest.mark.parametrize("body, needle", [
    ("    return jax._src.config.os.system('touch /tmp/x')", "jax._src"),
    ("    jnp.save('/tmp/x', ratio)\n    return ratio", "save"),
    ("    return jnp.load('/tmp/x')", "load"),
    ("    return jnp.fromfile('/tmp/x')", "fromfile"),
    ("    return jax.pure_callback(lambda x: x, ratio, ratio)", "pure_callback"),
    ("    jax.debug.callback(print, ratio)\n    return ratio", "jax.debug"),
    ("    return jax.experimental.io_callback(print, None, ratio)", "jax.experimental"),
    ("    return jax.lax.infeed(ratio)", "infeed"),
    ("    return getattr(jnp, 'sa' + 've')", "getattr"),
    ("    return ().__class__.__base__", "__base__"),
    ("    return f.__globals__", "__globals__"),
    ("    return (lambda: 0).__code__", "__code__"),
    ("    return (x for x in ()).gi_frame", "gi_frame"),
    ("    return vars()", "vars"),
    ("    return globals()", "globals"),
    ("    return '{0.__class__}'.format(ratio)", "format"),
    ("    return jnp.clip.__wrapped__", "__wrapped__"),
    ("    return jnp.clip.func_globals", "func_globals"),
    ("    return type(ratio)", "type"),
])
def test_attacks_are_refused_naming_what_is_allowed(body, needle):
    with pytest.raises(ProgramError) as err:
        load_program(SIG + body, LPO_SIG)
    assert err.value.kind == "forbidden" and needle in str(err.value)
    assert "allowed" in str(err.value) or "offer" in str(err.value)


@pytest.mark.parametrize("header", ["import os", "import jax._src", "from jax import _src",
                                    "from jax._src import config", "import numpy as np",
                                    "from jax import random", "import subprocess"])
def test_imports_beyond_the_allowed_modules_are_refused(header):
    with pytest.raises(ProgramError) as err:
        load_program(header + "\n" + SIG + "    return ratio", LPO_SIG)
    assert err.value.kind == "forbidden" and "allowed" in str(err.value)


@pytest.mark.parametrize("header", ["import flax.linen as nn", "from flax import linen as nn",
                                    "import jax.numpy as jnp", "from jax import numpy as jnp, lax",
                                    "import jax", "import math", "from jax.nn import relu"])
def test_allowed_imports_work(header):
    f = load_program(header + "\n" + SIG + "    return jax.nn.relu(ratio - 1) * advantage", LPO_SIG)
    np.testing.assert_allclose(np.asarray(f(jnp.asarray([2.0]), jnp.ones(1), 0.2)), [1.0])


def test_proxies_hold_only_allowed_names():
    from sandbox.checks import program_namespace
    ns = program_namespace()
    for module, name in [("jnp", "save"), ("jnp", "load"), ("jax", "_src"), ("jax", "debug"),
                         ("jax", "experimental"), ("jax", "pure_callback"), ("nn", "Module")]:
        assert not hasattr(ns[module], name), (module, name)
    assert not hasattr(ns["jax"].lax, "infeed") and hasattr(ns["jax"].lax, "cond")
    assert "open" not in ns["__builtins__"] and "getattr" not in ns["__builtins__"]


def test_every_family_warm_start_passes_and_computes_the_same():
    import inspect
    import textwrap

    import jax

    for name in ("lpo", "open", "open_ff", "no_features"):
        family = get_family(name)
        native = family.warm_start_fn()
        src = "import jax.numpy as jnp\nimport flax.linen as nn\n" + textwrap.dedent(
            inspect.getsource(native))
        loaded = load_program(src, family.code_signature)
        args = [jax.random.uniform(jax.random.key(i), (5,), minval=0.5, maxval=1.5)
                for i in range(len(family.code_signature))]
        if name == "lpo":
            args[-1] = 0.2
        for a, b in zip(jax.tree.leaves(native(*args)), jax.tree.leaves(loaded(*args))):
            assert np.array_equal(np.asarray(a), np.asarray(b)), name
