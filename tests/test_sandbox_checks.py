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
