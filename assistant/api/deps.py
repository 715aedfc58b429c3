"""Typed access to the services from a route: ``ServicesDep`` and one dependency per optional part, which
answers 503 (PartDisabled, naming the setting) when that part is turned off in config."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assistant.feeds.service import FeedService
from assistant.notify.service import Notifier
from assistant.services import Services
from assistant.skillkit.registry import SkillRunner
from assistant.skillkit.scheduler import SkillScheduler
from memory.service import MemoryService


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_memory(services: ServicesDep) -> MemoryService:
    return services.require("memory", services.memory)


def get_notifier(services: ServicesDep) -> Notifier:
    return services.require("notifier", services.notifier)


def get_feeds(services: ServicesDep) -> FeedService:
    return services.require("feeds", services.feeds)


def get_skills(services: ServicesDep) -> SkillRunner:
    return services.require("skills", services.skills)


def get_scheduler(services: ServicesDep) -> SkillScheduler:
    return services.require("scheduler", services.scheduler)


MemoryDep = Annotated[MemoryService, Depends(get_memory)]
NotifierDep = Annotated[Notifier, Depends(get_notifier)]
FeedsDep = Annotated[FeedService, Depends(get_feeds)]
SkillsDep = Annotated[SkillRunner, Depends(get_skills)]
SchedulerDep = Annotated[SkillScheduler, Depends(get_scheduler)]
