"""/api/skills: list the skills and run one now."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field

from assistant.api.deps import SkillsDep
from assistant.api.limits import CheckedJSONRoute
from assistant.api.links import link_to, with_links
from assistant.skillkit.context import SkillResult

router = APIRouter(prefix="/api/skills", route_class=CheckedJSONRoute)


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    args: dict[str, Any] = Field(default_factory=dict)
    timezone: str | None = Field(None, max_length=64, description="IANA zone for local times")


def result_json(name: str, result: SkillResult) -> dict[str, Any]:
    return {
        "skill": name,
        "title": result.title,
        "text": result.text,
        "data": result.data,
        "urgent": result.urgent,
        "notify": result.notify,
    }


@router.get(
    "",
    responses=with_links(
        200,
        "The skills",
        RunFirstSkill=link_to("/api/skills/{name}/run", "POST", name="$response.body#/data/0/name"),
    ),
)
def list_skills(skills: SkillsDep) -> dict[str, Any]:
    registry = skills.registry
    return {"data": registry.describe(), "errors": registry.errors}


@router.post("/{name}/run")
def run_skill(
    name: str, skills: SkillsDep, req: Annotated[RunRequest | None, Body()] = None
) -> dict[str, Any]:
    """Run a skill now and answer with its result (blocking: it may wait for the model)."""
    req = req or RunRequest(timezone=None)
    result = skills.run(name, req.args, timezone=req.timezone, trigger="api")
    return result_json(name, result)
