"""The LLM proposer: any litellm model (or an OpenAI-compatible server via `api_base`).

The prompt is rebuilt every generation from the bundled prompts/ (`workbench.resources`) and the
run store — the family's task, the top-k archive with fitness, the last outcome and any user
messages — instead of replaying a conversation that grows without bound.  Replies are JSON
`{thought, name, code}`, or SEARCH/REPLACE edits against the best parent in `diff` mode (with a
full-rewrite fallback).  A reply that yields no program becomes a `no_code` candidate; retryable
API errors (429, timeouts, 5xx) are retried with backoff and, when retries run out, also end as
`no_code`, so the run goes on.  An error no retry can fix (bad API key, unknown model, malformed
request) stops the run at once with the provider's message (`LLMRequestRejected`), instead of
recording `no_code` on every generation.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from evaluators.families import Family
from workbench.errors import LLMRequestRejected
from workbench.proposers import Proposal
from workbench.resources import prompt

RETRYABLE = ("RateLimitError", "Timeout", "APIConnectionError", "ServiceUnavailableError",
             "InternalServerError", "APIError")
# HTTP statuses of requests that fail the same way however often they are sent
FATAL_STATUS = {400: "bad request", 401: "authentication failed", 403: "permission denied",
                404: "not found", 422: "unprocessable request"}


def rejection(exc: Exception, model: str, cfg: Any) -> LLMRequestRejected | None:
    """The `LLMRequestRejected` for an error no retry can fix, or None (retryable or unknown).

    A content-policy refusal is about one reply, not the settings, so it is not fatal."""
    import litellm

    if isinstance(exc, litellm.ContentPolicyViolationError):
        return None
    status = getattr(exc, "status_code", None)
    fatal_types = (litellm.AuthenticationError, litellm.PermissionDeniedError, litellm.NotFoundError,
                   litellm.BadRequestError, litellm.UnprocessableEntityError)
    if not isinstance(exc, fatal_types) and status not in FATAL_STATUS:
        return None
    if isinstance(exc, (litellm.AuthenticationError, litellm.PermissionDeniedError)) or status in (401, 403):
        where = (f"the {cfg.api_key_env} variable" if cfg.api_key_env
                 else "the provider's key variable, e.g. OPENAI_API_KEY")
        fix = (f"check the API key ({where}, in the environment or .env; llm.api_key_env names "
               f"another variable)")
    elif isinstance(exc, litellm.NotFoundError) or status == 404:
        fix = (f"check llm.model {model!r}" + (f" and llm.api_base {cfg.api_base!r}" if cfg.api_base else "")
               + " (litellm names look like gpt-4o-mini, anthropic/..., or openai/NAME with llm.api_base)")
    elif isinstance(exc, litellm.ContextWindowExceededError):
        fix = "lower llm.archive_top_k, or use a model with a longer context"
    else:
        fix = "check llm.model, llm.api_base and llm.temperature for this provider"
    what = FATAL_STATUS.get(status, type(exc).__name__)
    message = " ".join(str(exc).split())[:400]  # the provider's words, on one line
    return LLMRequestRejected(f"model {model!r}: {what} ({status or type(exc).__name__}): {message}",
                              fix=fix + "; then continue the run with `workbench resume RUN_DIR`")


def read_dotenv(path: Path = Path(".env")) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (not exported, so no child process ever inherits them)."""
    out: dict[str, str] = {}
    try:
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                out[k.strip().removeprefix("export ").strip()] = v.strip().strip("'\"")
    except OSError:
        pass
    return out


def extract_json(text: str) -> dict[str, Any] | None:
    """The first JSON object in a reply, tolerating ``` fences and prose around it."""
    fenced = re.findall(r"```(?:json)?\s*(\{.*?\})\s*```", text, re.S)
    for chunk in fenced + [text[text.find("{"): text.rfind("}") + 1] if "{" in text else ""]:
        try:
            obj = json.loads(chunk)
        except (json.JSONDecodeError, ValueError):
            continue
        if isinstance(obj, dict):
            return obj
    return None


DIFF_BLOCK = re.compile(r"<<<<<<< SEARCH\n(.*?)\n=======\n(.*?)\n>>>>>>> REPLACE", re.S)


def apply_diff(parent: str, reply: str) -> str | None:
    """Apply SEARCH/REPLACE blocks; None if there are none or one does not match the parent."""
    blocks = DIFF_BLOCK.findall(reply)
    if not blocks:
        return None
    code = parent
    for search, replace in blocks:
        if search not in code:
            return None
        code = code.replace(search, replace, 1)
    return code


class LLMClient:
    """One litellm chat call with the run's settings: key, api_base, retries with backoff, and the
    tokens and cost of the call.  Shared by the proposer and the tool-calling agent, so both talk to
    models (and count what they spend) the same way."""

    def __init__(self, cfg: Any):
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch of prices
        import litellm  # noqa: F401 - fail early with a clear error if missing

        self.cfg = cfg
        self.models = list(cfg.models) or ([cfg.model] if cfg.model else [])
        env = {**read_dotenv(), **os.environ}
        self.api_key = env.get(cfg.api_key_env) if cfg.api_key_env else None
        if self.api_key is None and cfg.api_base:
            self.api_key = env.get("OPENAI_API_KEY", "sk-no-key")  # local servers often need none
        self.unpriced: set[str] = set()  # models already warned about (no price known)

    def cost(self, model: str, resp: Any, prompt_tokens: float, completion_tokens: float) -> float:
        """USD of one call: from `llm.price_per_mtok` when set, else litellm's price map; a model
        with no known price counts as $0, with a warning (once per model) that says so."""
        price = getattr(self.cfg, "price_per_mtok", None)
        if price is not None:
            return (prompt_tokens * price.input + completion_tokens * price.output) / 1e6
        import litellm
        try:
            return float(litellm.completion_cost(completion_response=resp) or 0.0)
        except Exception:  # noqa: BLE001 - unknown (e.g. local) models have no price
            pass
        if model not in self.unpriced:
            self.unpriced.add(model)
            budget = (f"llm.max_cost_usd (${self.cfg.max_cost_usd:g}) is not enforced"
                      if self.cfg.max_cost_usd is not None else "the run's cost shows $0")
            sys.stderr.write(f"warning: no price is known for model {model!r}, so its calls count "
                             f"as $0 and {budget}; set llm.price_per_mtok: {{input: USD, output: USD}} "
                             f"(per million tokens) to count them\n")
        return 0.0

    def complete(self, model: str, messages: list[dict[str, Any]],
                 tools: list[dict[str, Any]] | None = None) -> tuple[Any, dict[str, float]]:
        """(the reply message, usage) of one call; retryable errors are retried with backoff and
        the last one is raised when retries run out."""
        import litellm

        kwargs: dict[str, Any] = {"model": model, "messages": messages, "timeout": self.cfg.request_timeout_s,
                                  "num_retries": 0}
        if tools:
            kwargs["tools"] = tools
        if self.cfg.api_base:
            kwargs["api_base"] = self.cfg.api_base
        if self.api_key:
            kwargs["api_key"] = self.api_key
        if self.cfg.temperature is not None:
            kwargs["temperature"] = self.cfg.temperature
        last_err: Exception | None = None
        for attempt in range(self.cfg.max_retries + 1):
            try:
                resp = litellm.completion(**kwargs)
            except Exception as exc:  # noqa: BLE001 - classified below
                last_err = exc
                rejected = rejection(exc, model, self.cfg)
                if rejected is not None:
                    raise rejected from None
                if type(exc).__name__ in RETRYABLE or "timeout" in str(exc).lower():
                    time.sleep(self.cfg.retry_base_s * (2 ** attempt))
                    continue
                raise
            usage = getattr(resp, "usage", None)
            prompt_tokens = float(getattr(usage, "prompt_tokens", 0) or 0)
            completion_tokens = float(getattr(usage, "completion_tokens", 0) or 0)
            info = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                    "cost_usd": self.cost(model, resp, prompt_tokens, completion_tokens),
                    "attempts": float(attempt + 1)}
            return resp.choices[0].message, info
        raise RuntimeError(f"{type(last_err).__name__}: {last_err}")


def task_text(family: Family) -> str:
    """The family's task prompt with its warm-start program filled in."""
    from workbench.agent.sources import warm_start_source

    return prompt(f"{family.name}/task.md").replace(
        "{warm_start}", warm_start_source(family).strip())


class LLMSource:
    """Proposals from language models, one call per candidate, models taken round-robin."""

    method = "llm"

    def __init__(self, config: Any, family: Family):
        self.cfg = config.llm
        self.family = family
        self.client = LLMClient(self.cfg)
        self.models = self.client.models
        if not self.models:
            raise ValueError("llm.model or llm.models must name at least one model for proposer 'llm'")
        self.system = prompt("system_diff.md" if self.cfg.mode == "diff" else "system.md")
        from workbench.agent.sources import warm_start_source
        self.warm_start = warm_start_source(family)
        self.task = task_text(family)
        self.feedback = prompt(f"{family.name}/feedback.md")

    # -- prompt ---------------------------------------------------------------------------
    def build_messages(self, store: Any, inbox: list[str]) -> tuple[list[dict[str, str]], tuple[int, str] | None]:
        from workbench.agent.sources import archive

        arch = archive(store)[: self.cfg.archive_top_k]
        warm = [r for r in store.candidates() if r.method == "warm_start" and r.fitness is not None]
        lines = [f"### candidate {cid} — fitness {fit:.4f}\n```python\n{src.strip()}\n```"
                 for cid, src, fit, _ in arch]
        rows = store.candidates()
        last = "none yet"
        if rows:
            r = rows[-1]
            last = (f"candidate {r.id} ({r.label}): {r.outcome}"
                    + (f", fitness {r.fitness:.4f}" if r.fitness is not None else "")
                    + (f" — {r.reason}" if r.reason else ""))
        user = "".join(f"Message from the user: {m}\n" for m in inbox)
        text = self.feedback.format(baseline=f"{warm[0].fitness:.4f}" if warm else "unknown",
                                    archive="\n\n".join(lines) or "(nothing scored yet)", last=last, user=user)
        parent = (arch[0][0], arch[0][1]) if arch else None
        if self.cfg.mode == "diff" and parent:
            text += f"\n\nPARENT program (candidate {parent[0]}) to edit:\n```python\n{parent[1].strip()}\n```\n"
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": self.task + "\n\n" + text}], parent

    # -- call -----------------------------------------------------------------------------
    def _complete(self, model: str, messages: list[dict[str, str]]) -> tuple[str, dict[str, float]]:
        message, info = self.client.complete(model, messages)
        return message.content or "", info

    def propose(self, store: Any, generation: int, inbox: list[str]) -> Proposal:
        from workbench.agent.sources import archive

        if not archive(store) and not any(r.method == "warm_start" for r in store.candidates()):
            return Proposal(name="warm-start", code=self.warm_start, thought="the family's warm start",
                            operator="warm_start")
        model = self.models[generation % len(self.models)]
        messages, parent = self.build_messages(store, inbox)
        try:
            reply, usage = self._complete(model, messages)
        except LLMRequestRejected:
            raise  # no retry or later generation can fix it: the run stops with the reason
        except Exception as exc:  # noqa: BLE001 - the run goes on without this proposal
            return Proposal(name="llm-error", code=None, outcome="no_code",
                            thought=f"model call failed after retries: {str(exc)[:500]}",
                            operator=model)
        usage_info = {**usage}
        store.add_message("llm_reply", reply, {"model": model, "generation": generation, **usage})
        parents = [parent[0]] if parent else []
        if self.cfg.mode == "diff" and parent:
            code = apply_diff(parent[1], reply)
            if code is not None:
                thought = DIFF_BLOCK.split(reply)[0].strip()[:1000]
                return Proposal(name=f"diff-of-{parent[0]}", code=code, thought=thought,
                                parents=parents, operator=model, usage=usage_info)
        obj = extract_json(reply)
        if obj is None or not isinstance(obj.get("code"), str) or not obj["code"].strip():
            return Proposal(name="malformed", code=None, outcome="no_code", operator=model,
                            thought=f"the reply held no JSON object with a 'code' string: {reply[:300]!r}",
                            usage=usage_info)
        name = re.sub(r"[^A-Za-z0-9_\-]", "_", str(obj.get("name") or "llm"))[:60]
        return Proposal(name=name, code=obj["code"], thought=str(obj.get("thought", ""))[:2000],
                        parents=parents, operator=model, usage=usage_info)
