"""The scheduler's job store: APScheduler 3's SQLAlchemyJobStore (SQLite in the data dir) whose jobs call
the scheduler that owns the store.

Every stored job names ``run_scheduled_skill`` in ``assistant.skillkit.scheduler`` by its textual path
(``JOB_FUNC``), so jobs pickle and old job stores keep loading. The store binds each job it loads or
adds to its owner's method instead: no global registry of running schedulers, and two schedulers in one
process each run their own jobs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apscheduler.job import Job
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

JOB_FUNC = "assistant.skillkit.scheduler:run_scheduled_skill"  # stored in every job: never change it
TABLE = "schedules"


def open_job_store(url: str, run: Callable[..., None]) -> SQLAlchemyJobStore:
    """The job store at ``url`` (``sqlite:///...``), its jobs bound to ``run``."""
    store: SQLAlchemyJobStore = _skill_job_store()(url, run)
    return store


@functools.cache
def _skill_job_store() -> type[SQLAlchemyJobStore]:
    """SQLAlchemyJobStore whose jobs named ``JOB_FUNC`` call the owning scheduler's method.

    APScheduler 3 builds every job it runs from the stored pickle in ``_reconstitute_job`` (due jobs,
    lookups, modifications), so that is where the callable is bound; ``add_job`` and ``update_job``
    bind too, for a job object used after it is stored. What is pickled stays the textual
    reference: ``Job.__getstate__`` stores ``func_ref``, and ``_bind`` sets it back to ``JOB_FUNC``
    (``Job._modify`` recomputes it from the bound method when a modification changes the arguments,
    which would otherwise store the scheduler itself). Defined on first use so that importing this
    module does not import SQLAlchemy.
    """
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    class SkillJobStore(SQLAlchemyJobStore):
        def __init__(self, url: str, run: Callable[..., None]) -> None:
            super().__init__(url=url, tablename=TABLE)
            self._run = run

        def add_job(self, job: Job) -> None:
            self._bind(job)
            super().add_job(job)

        def update_job(self, job: Job) -> None:
            self._bind(job)
            super().update_job(job)

        def _reconstitute_job(self, job_state: bytes) -> Job:
            job = super()._reconstitute_job(job_state)
            self._bind(job)
            return job

        def _bind(self, job: Job) -> None:
            if job.func_ref == JOB_FUNC or job.func == self._run:
                job.func = self._run
                job.func_ref = JOB_FUNC

    return SkillJobStore
