"""Every error a user can cause reaches the real CLI entry as `error: <message>` plus at most one
`fix:` line, exits 2 and shows no traceback (one test per error class).

None of them trains a candidate, so they are fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from workbench.cli import main
from workbench.config import build_config
from workbench.runs import create_run

TINY = {"family": "lpo", "envs": ["cartpole"], "seeds": 1, "timesteps": 4096, "num_envs": 4}


def _cli(capsys, *argv: str) -> tuple[int, list[str]]:
    """Run `workbench ARGV` in-process: (exit code, the error block's lines)."""
    code = main(list(argv))
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text, text
    lines = out.out.splitlines()
    start = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    assert start, out.out
    return code, lines[start[0]:]


def _assert_reported(code: int, lines: list[str], *needles: str) -> str:
    """Exit 2, one or two lines (message, then `fix:`), each needle in them; returns the text."""
    text = "\n".join(lines)
    assert code == 2, text
    assert 1 <= len(lines) <= 2, text
    for needle in needles:
        assert needle in text, (needle, text)
    return text


def _config_file(tmp_path: Path, **fields) -> str:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({**TINY, **fields}))
    return str(path)


# -- configuration -----------------------------------------------------------------------------
def test_config_import_and_validation_do_not_pull_in_jax_or_methods():
    """`workbench.config` imports without JAX, and validating a config imports no method module
    (the evosax check runs only for a non-default es.strategy; the environment registry, which
    needs gymnax and so JAX, only when environments are named)."""
    probe = ("import sys, workbench.config as c\n"
             "assert 'jax' not in sys.modules, 'import'\n"
             "c.build_config({'method': 'pipeline', 'pipeline': ['es', 'llm'], 'envs': [],\n"
             "                'es': {'strategy': 'open_es', 'popsize': 8}})\n"
             "bad = [m for m in sys.modules if m.startswith(('jax', 'workbench.methods', 'evosax'))]\n"
             "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", probe], check=True, cwd=Path(__file__).resolve().parents[1])


def test_config_error_misspelled_pipeline_step(tmp_path, capsys):
    cfg = _config_file(tmp_path, method="pipeline", pipeline=["es", "distil"])
    code, lines = _cli(capsys, "run", "--config", cfg, "--run-dir", str(tmp_path / "run"))
    _assert_reported(code, lines, "pipeline: unknown step 'distil'", "es, distill, symbolic, llm",
                     "fix the spelling")
    assert not (tmp_path / "run").exists()  # refused before a run directory was made


def test_config_error_empty_pipeline(capsys):
    code, lines = _cli(capsys, "run", "--config", "configs/cpu/lpo_es.yaml", "--set", "method=pipeline")
    _assert_reported(code, lines, "pipeline: empty", "pipeline=[es,distill,symbolic,llm]")


def test_unknown_strategy_error(capsys):
    code, lines = _cli(capsys, "run", "--config", "configs/cpu/lpo_es.yaml",
                       "--set", "es.strategy=NoSuchES")
    _assert_reported(code, lines, "es.strategy: unknown strategy 'NoSuchES'", "use 'open_es'")


# -- runs and candidates -----------------------------------------------------------------------
def test_run_not_found(tmp_path, capsys):
    code, lines = _cli(capsys, "resume", str(tmp_path / "nowhere"))
    _assert_reported(code, lines, "is not a run directory", "fix: ", "workbench runs")
    assert not (tmp_path / "nowhere").exists()  # looking did not create it
    code, lines = _cli(capsys, "compare", str(tmp_path / "nowhere"), "best")
    _assert_reported(code, lines, "is not a run directory", "fix: ")


def test_run_exists(tmp_path, capsys):
    cfg = _config_file(tmp_path, method="es")
    create_run(build_config({**TINY, "method": "es"}), tmp_path / "run").close()
    code, lines = _cli(capsys, "run", "--config", cfg, "--run-dir", str(tmp_path / "run"))
    _assert_reported(code, lines, "already holds a run", f"fix: continue it with `workbench resume {tmp_path / 'run'}`")


def test_candidate_not_found(tmp_path, capsys):
    create_run(build_config({**TINY, "method": "es"}), tmp_path / "run").close()
    code, lines = _cli(capsys, "compare", str(tmp_path / "run"), "warm-start", "7")
    _assert_reported(code, lines, "no candidate 7", "fix: use an id of a candidate")
    code, lines = _cli(capsys, "compare", str(tmp_path / "run"), "warm-start", "newest")
    _assert_reported(code, lines, "'newest' is not a candidate reference", "'best' or 'warm-start'")
    code, lines = _cli(capsys, "eval", "--from", str(tmp_path / "run"))
    _assert_reported(code, lines, "no candidate with outcome ok", "fix: pick one with --candidate ID")


@pytest.mark.parametrize("override, old, new", [("es.popsize=16", "64", "16"),
                                                ("es.hsize=32", "None", "32"),
                                                ("seeds=4", "1", "4")])
def test_resume_refuses_to_change_a_fixed_field(tmp_path, capsys, override, old, new):
    create_run(build_config({**TINY, "method": "es"}), tmp_path / "run").close()
    field = override.split("=")[0]
    old = "null" if old == "None" else old
    code, lines = _cli(capsys, "resume", str(tmp_path / "run"), "--set", override)
    _assert_reported(code, lines, f"{field}: cannot change when resuming (was {old}, now {new})",
                     "fix: start a new run instead: workbench run --config",
                     f"--set {field}={new}")
    # budgets still extend
    from workbench.runs import open_run
    config, store = open_run(tmp_path / "run", ["es.generations=5", "llm.generations=7"])
    store.close()
    assert config.es.generations == 5 and config.es.popsize == 64


# -- errors raised when a method starts ---------------------------------------------------------
def test_method_unavailable(tmp_path, capsys, monkeypatch):
    import workbench.methods

    monkeypatch.setitem(workbench.methods.METHODS, "es", "workbench.methods._not_in_this_version")
    cfg = _config_file(tmp_path, method="es")
    code, lines = _cli(capsys, "run", "--config", cfg, "--run-dir", str(tmp_path / "run"))
    _assert_reported(code, lines, "method 'es' is not implemented", "fix: use one of the methods")


def test_teacher_error(tmp_path, capsys):
    cfg = _config_file(tmp_path, method="distill", distill={"teacher": str(tmp_path / "gone.npz")})
    code, lines = _cli(capsys, "run", "--config", cfg, "--run-dir", str(tmp_path / "run"))
    _assert_reported(code, lines, "gone.npz does not exist", "teacher: RUN_DIR")
    from workbench.store import RunStore
    with RunStore(tmp_path / "run") as store:
        assert store.run_info()["status"] == "failed"
        assert "TeacherError" in store.get_state("failure_reason")


def test_symbolic_refused(tmp_path, capsys):
    cfg = _config_file(tmp_path, family="open", method="symbolic", symbolic={"backend": "operon"})
    code, lines = _cli(capsys, "run", "--config", cfg, "--run-dir", str(tmp_path / "run"))
    _assert_reported(code, lines, "symbolic distillation of 'open' is not possible",
                     "fix: distil OPEN into a network instead")


def test_backend_unavailable(tmp_path, capsys, monkeypatch):
    from workbench.symbolic import backends

    monkeypatch.setattr(backends, "pysr_status", lambda timeout_s=0: (False, "no Julia here"))
    cfg = _config_file(tmp_path, method="symbolic",
                       symbolic={"backend": "pysr", "teacher": "warm-start"})
    code, lines = _cli(capsys, "run", "--config", cfg, "--run-dir", str(tmp_path / "run"))
    _assert_reported(code, lines, "symbolic.backend=pysr cannot run here: no Julia here",
                     "set symbolic.backend=operon")


def test_sandbox_unavailable(tmp_path, capsys, monkeypatch):
    """`sandbox` may not import `workbench`; its SandboxUnavailable is reported the same way."""
    import sandbox.pool

    monkeypatch.setattr(sandbox.pool, "probe", lambda: SimpleNamespace(
        full=False, reason="user namespaces are off", summary=lambda: "no namespaces"))
    cfg = _config_file(tmp_path, method="llm", llm={"proposer": "llm", "model": "openai/m",
                                                    "api_base": "http://127.0.0.1:9/v1"})
    code, lines = _cli(capsys, "run", "--config", cfg, "--run-dir", str(tmp_path / "run"))
    _assert_reported(code, lines, "sandbox isolation is incomplete", "sandbox.isolation: none")


def test_a_bug_still_shows_its_traceback(tmp_path, monkeypatch):
    """Only user errors are shortened: anything else propagates (here: out of main)."""
    import workbench.runs

    def boom(config, store):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr(workbench.runs, "execute", boom)
    cfg = _config_file(tmp_path, method="es")
    with pytest.raises(ZeroDivisionError):
        main(["run", "--config", cfg, "--run-dir", str(tmp_path / "run")])


# -- the LLM provider ---------------------------------------------------------------------------
class _Refusing(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that answers every chat request with a 401."""

    requests = 0

    def log_message(self, *a) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Refusing.requests += 1
        body = json.dumps({"error": {"message": "Incorrect API key provided: sk-bad****",
                                     "type": "invalid_request_error", "code": "invalid_api_key"}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_llm_bad_key_fails_the_run_fast(tmp_path, capsys, monkeypatch):
    """A 401 stops the run at the first model call: status failed with the provider's message,
    one request (no retries, no later generation asking again), no `no_code` rows.  The run's warm
    start is stored already (as a run that scored it would have), so nothing is evaluated and the
    sandbox pool (10 s to start and stop here) is replaced by nothing."""
    import contextlib

    import workbench.agent.graph
    from evaluators.families import get_family
    from workbench.agent.sources import warm_start_source

    monkeypatch.setattr(workbench.agent.graph, "open_pool",
                        lambda config, spares=None: contextlib.nullcontext(None))

    _Refusing.requests = 0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        config = build_config({**TINY, "method": "llm", "llm": {
            "proposer": "llm", "model": "openai/test-model",
            "api_base": f"http://127.0.0.1:{srv.server_address[1]}/v1", "generations": 3,
            "max_retries": 3, "retry_base_s": 0.05, "request_timeout_s": 10}})
        store = create_run(config, tmp_path / "run")
        cid = store.add_candidate(method="warm_start", kind="code", label="warm-start",
                                  source=warm_start_source(get_family("lpo")))
        store.finish_candidate(cid, "ok", fitness=0.5)
        store.close()
        code, lines = _cli(capsys, "resume", str(tmp_path / "run"))
    finally:
        srv.shutdown()
        srv.server_close()
    _assert_reported(code, lines, "authentication failed (401)", "Incorrect API key provided",
                     "fix: check the API key")
    assert _Refusing.requests == 1
    from workbench.store import RunStore
    with RunStore(tmp_path / "run") as store:
        assert store.run_info()["status"] == "failed"
        assert "Incorrect API key provided" in store.get_state("failure_reason")
        assert [r.outcome for r in store.candidates()] == ["ok"]  # the warm start only


def test_unpriced_model_warns_once_and_a_price_table_counts_tokens(capsys):
    from scripted_llm import scripted_server

    from workbench.proposers.llm import LLMClient

    with scripted_server([("text", "{}")] * 4) as srv:
        base = f"http://127.0.0.1:{srv.server_address[1]}/v1"
        llm = build_config({"llm": {"model": "openai/test-model", "api_base": base,
                                    "max_cost_usd": 1.0}}).llm
        client = LLMClient(llm)
        costs = [client.complete("openai/test-model", [{"role": "user", "content": "hi"}])[1]["cost_usd"]
                 for _ in range(2)]
        err = capsys.readouterr().err
        assert costs == [0.0, 0.0]
        assert err.count("warning: no price is known for model 'openai/test-model'") == 1, err
        assert "llm.max_cost_usd ($1) is not enforced" in err and "llm.price_per_mtok" in err
        priced = build_config({"llm": {"model": "openai/test-model", "api_base": base,
                                       "price_per_mtok": {"input": 10.0, "output": 50.0}}}).llm
        _, usage = LLMClient(priced).complete("openai/test-model", [{"role": "user", "content": "hi"}])
        # the scripted server reports 100 prompt and 20 completion tokens
        assert usage["cost_usd"] == pytest.approx((100 * 10.0 + 20 * 50.0) / 1e6)
        assert "warning" not in capsys.readouterr().err


def test_price_table_enforces_the_cost_budget(tmp_path):
    """With a price, the spend reaches `llm.max_cost_usd` and the discovery loop stops there."""
    from workbench.agent.graph import budget_left

    config = build_config({**TINY, "method": "llm", "llm": {
        "model": "openai/test-model", "max_cost_usd": 0.003,
        "price_per_mtok": {"input": 10.0, "output": 50.0}}})
    store = create_run(config, tmp_path / "run")
    for _ in range(2):
        assert budget_left(config, store, None) is None
        store.add_cost(usd=(100 * 10.0 + 20 * 50.0) / 1e6)  # what one call above costs
    assert "cost budget reached" in budget_left(config, store, None)
    store.close()
