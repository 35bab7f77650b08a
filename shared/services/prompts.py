"""Prompt files: `prompts/<name>.v<N>.md`, one per version, sections under `## system` and `## user`."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from ..domain.llm_plan import Prompt
from ..ports import Services

_SECTION = re.compile(r"^## (system|user)\s*$", re.MULTILINE)


@lru_cache(maxsize=16)
def load(directory: Path, version: str) -> Prompt:
    """The prompt `version` (e.g. plan.v1) from `directory`; its comments (<!-- -->) are not sent."""
    if not re.fullmatch(r"[a-z0-9_-]+\.v\d+", version):
        raise ValueError(f"prompt version {version!r} is not <name>.v<N>")
    text = re.sub(r"<!--.*?-->", "", (directory / f"{version}.md").read_text(encoding="utf-8"), flags=re.S)
    parts = _SECTION.split(text)
    sections = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    if set(sections) != {"system", "user"} or "{data}" not in sections["user"]:
        raise ValueError(f"prompt {version} needs '## system' and '## user' sections, the user one with {{data}}")
    return Prompt(version, sections["system"], sections["user"])


def in_use(services: Services) -> Prompt:
    """The prompt PLAN_PROMPT names, unless a newer version of it was added over the API and activated."""
    deployed = load(services.settings.prompt_dir, services.settings.plan_prompt)
    name, _, number = services.settings.plan_prompt.rpartition(".v")
    newer = services.catalog.prompts.get(name)
    if newer is not None and int(newer.version.rpartition(".v")[2]) > int(number):
        return newer
    return deployed
