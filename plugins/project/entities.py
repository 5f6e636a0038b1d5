"""A compiled project: its tasks, pipelines, aliases and launch plans, by the names its file gives them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flytekit import LaunchPlan
from flytekit.core.workflow import WorkflowBase
from flytekitplugins.prebuilt.kit.task import PrebuiltTask
from flytekitplugins.prebuilt.project.errors import did_you_mean
from flytekitplugins.prebuilt.project.pipelines import Pipeline


@dataclass
class Project:
    """A loaded project: its entities, by the names the file gives them."""

    name: str
    path: str
    tasks: dict[str, PrebuiltTask] = field(default_factory=dict)
    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # taskRef entries: name -> the task or pipeline
    launch_plans: dict[str, LaunchPlan] = field(default_factory=dict)  # scheduled: name -> its launch plan
    wrappers: dict[str, WorkflowBase] = field(default_factory=dict)  # scheduled tasks' one-node workflows
    warnings: list = field(default_factory=list)  # Problems that do not stop it: AME's sections dropped (ame.py)

    def target(self, name: str) -> str:
        """The task or pipeline ``name`` stands for (following taskRef aliases)."""
        while name in self.aliases:
            name = self.aliases[name]
        return name

    def entity(self, name: str):
        name = self.target(name)
        if name in self.tasks:
            return self.tasks[name]
        if name in self.pipelines:
            return self.pipelines[name].workflow
        known = [*self.tasks, *self.pipelines, *self.aliases]
        raise KeyError(f"project {self.name!r} has no task or pipeline {name!r}{did_you_mean(name, known)}")

    @property
    def entities(self) -> dict[str, Any]:
        """Module-level names for pyflyte: tasks, pipelines (workflows), aliases, ``<name>_schedule`` launch plans
        and ``<name>_workflow`` for a scheduled task's one-node workflow."""
        found: dict[str, Any] = {**self.tasks, **{n: p.workflow for n, p in self.pipelines.items()}}
        found.update({alias: self.entity(alias) for alias in self.aliases})
        found.update({f"{n}_workflow": w for n, w in self.wrappers.items()})
        found.update({f"{n}_schedule": lp for n, lp in self.launch_plans.items()})
        return found
