"""The one litellm chat call of the workbench, shared by the LLM proposer and the tool-calling agent:
the run's key and api_base, retries with backoff for errors a retry can fix, `LLMRequestRejected`
at once for those it cannot (bad key, unknown model, malformed request), and the tokens and cost of
every call.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from workbench.errors import LLMRequestRejected

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
