"""The Llm port over the openai client: Azure OpenAI (API key or managed identity) or any OpenAI-compatible
endpoint. Imported only when an LLM is configured: `import function_app` never loads openai.

Structured outputs: the answer is requested as the JSON Schema of a pydantic model and parsed into it.
Every failure of the model or the service becomes a Completion outcome, never an exception: the planner
falls back on it and the telemetry counts it.
"""
from __future__ import annotations

import json
import time
from typing import Any

from ..ports import Completion

# Cognitive Services' Entra scope: the managed identity needs the "Cognitive Services OpenAI User" role.
AZURE_SCOPE = "https://cognitiveservices.azure.com/.default"


class OpenAiLlm:
    def __init__(self, client: Any, model: str, timeout: float):
        self.client, self.model, self.timeout = client, model, timeout

    def complete(self, messages: list[dict[str, str]], schema: type) -> Completion:
        import openai
        import pydantic

        started = time.perf_counter()

        def done(outcome: str, **fields: Any) -> Completion:
            return Completion(outcome, latency_ms=round((time.perf_counter() - started) * 1000, 1), **fields)

        try:
            response = self.client.chat.completions.parse(model=self.model, messages=messages,
                                                          response_format=schema, temperature=0,
                                                          timeout=self.timeout)
        except openai.APITimeoutError:
            return done("timeout", detail=f"no answer within {self.timeout:g}s")
        except openai.RateLimitError as exc:
            return done("rate_limited", detail=_retry_after(exc))
        except (pydantic.ValidationError, json.JSONDecodeError, ValueError) as exc:
            return done("invalid", detail=str(exc)[:300])
        except openai.LengthFinishReasonError:
            return done("invalid", detail="the answer was cut off at the token limit")
        except openai.ContentFilterFinishReasonError:
            return done("refused", detail="the content filter stopped the answer")
        except openai.APIStatusError as exc:
            return done("error", detail=f"HTTP {exc.status_code}")
        except openai.APIConnectionError as exc:
            return done("error", detail=f"connection: {type(exc).__name__}")
        usage = getattr(response, "usage", None)
        tokens = {"prompt_tokens": getattr(usage, "prompt_tokens", 0) or 0,
                  "completion_tokens": getattr(usage, "completion_tokens", 0) or 0}
        message = response.choices[0].message
        if getattr(message, "refusal", None):
            return done("refused", detail=str(message.refusal)[:300], **tokens)
        if message.parsed is None:
            return done("invalid", text=(message.content or "")[:2000], detail="no parsable answer", **tokens)
        return done("ok", parsed=message.parsed, text=(message.content or "")[:4000], **tokens)


def _retry_after(exc: Any) -> str:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    return f"429, Retry-After {headers.get('retry-after', '?')}s"


def build(settings: Any, token_provider: Any | None = None) -> OpenAiLlm | None:
    """The configured LLM, or None (deterministic planning only).

    Azure OpenAI when AZURE_OPENAI_ENDPOINT is set: its API key if given (a Key Vault reference), else a
    bearer token from the managed identity (azure-identity). Otherwise any OpenAI-compatible LLM_BASE_URL.
    """
    if settings.azure_openai_endpoint:
        from openai import AzureOpenAI

        auth: dict[str, Any] = {"api_key": settings.azure_openai_api_key}
        if not settings.azure_openai_api_key:
            if token_provider is None:
                from azure.identity import DefaultAzureCredential, get_bearer_token_provider
                token_provider = get_bearer_token_provider(DefaultAzureCredential(), AZURE_SCOPE)
            auth = {"azure_ad_token_provider": token_provider}
        azure = AzureOpenAI(azure_endpoint=settings.azure_openai_endpoint,
                            api_version=settings.azure_openai_api_version,
                            azure_deployment=settings.azure_openai_deployment, max_retries=1,
                            timeout=settings.llm_timeout, **auth)
        return OpenAiLlm(azure, settings.azure_openai_deployment, settings.llm_timeout)
    if settings.llm_base_url:
        from openai import OpenAI

        client = OpenAI(base_url=settings.llm_base_url, api_key=settings.llm_api_key or "not-needed", max_retries=1,
                        timeout=settings.llm_timeout)
        return OpenAiLlm(client, settings.llm_model, settings.llm_timeout)
    return None
