"""The LLM proposer: any litellm model (or an OpenAI-compatible server via `api_base`).

The prompt is rebuilt every generation from data files under prompts/ and the run store — the
family's task, the top-k archive with fitness, the last outcome and any user messages — instead of
replaying a conversation that grows without bound.  Replies are JSON `{thought, name, code}`, or
SEARCH/REPLACE edits against the best parent in `diff` mode (with a full-rewrite fallback).  A reply
that yields no program becomes a `no_code` candidate; API errors are retried with backoff and, when
retries run out, also end as `no_code`, so the run goes on.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from evaluators.families import Family
from workbench.proposers import Proposal

PROMPTS = Path(__file__).resolve().parent.parent.parent / "prompts"
RETRYABLE = ("RateLimitError", "Timeout", "APIConnectionError", "ServiceUnavailableError",
             "InternalServerError", "APIError")


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
                if type(exc).__name__ in RETRYABLE or "timeout" in str(exc).lower():
                    time.sleep(self.cfg.retry_base_s * (2 ** attempt))
                    continue
                raise
            usage = getattr(resp, "usage", None)
            try:
                cost = float(litellm.completion_cost(completion_response=resp) or 0.0)
            except Exception:  # noqa: BLE001 - unknown (e.g. local) models have no price
                cost = 0.0
            info = {"prompt_tokens": float(getattr(usage, "prompt_tokens", 0) or 0),
                    "completion_tokens": float(getattr(usage, "completion_tokens", 0) or 0),
                    "cost_usd": cost, "attempts": float(attempt + 1)}
            return resp.choices[0].message, info
        raise RuntimeError(f"{type(last_err).__name__}: {last_err}")


def task_text(family: Family) -> str:
    """The family's task prompt with its warm-start program filled in."""
    from workbench.agent.sources import warm_start_source

    return (PROMPTS / family.name / "task.md").read_text().replace(
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
        fam_dir = PROMPTS / family.name
        self.system = (PROMPTS / ("system_diff.md" if self.cfg.mode == "diff" else "system.md")).read_text()
        from workbench.agent.sources import warm_start_source
        self.warm_start = warm_start_source(family)
        self.task = task_text(family)
        self.feedback = (fam_dir / "feedback.md").read_text()

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
