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
import re
from typing import Any

from evaluators.families import Family
from workbench.errors import LLMRequestRejected
from workbench.proposers import Proposal
from workbench.proposers.archive import archive, warm_start_source
from workbench.proposers.llm_client import LLMClient
from workbench.resources import prompt


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


def task_text(family: Family) -> str:
    """The family's task prompt with its warm-start program filled in."""
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
        self.warm_start = warm_start_source(family)
        self.task = task_text(family)
        self.feedback = prompt(f"{family.name}/feedback.md")

    # -- prompt ---------------------------------------------------------------------------
    def build_messages(self, store: Any, inbox: list[str]) -> tuple[list[dict[str, str]], tuple[int, str] | None]:
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
