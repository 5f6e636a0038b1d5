"""Compiling a checked project into the entities the Python API makes: each entry is declared first (so that
references to it hold in any order), then built once, what it references before it: a task by its type's task class
(``tasks.py``), a pipeline as a flytekit ``ImperativeWorkflow`` (``pipelines.py``), a trigger as a ``LaunchPlan``
with a ``CronSchedule`` (``schedules.py``). No code is generated.
"""

from __future__ import annotations

from typing import Any, Optional

from flytekitplugins.prebuilt.project.entities import Project
from flytekitplugins.prebuilt.project.errors import Problem, did_you_mean
from flytekitplugins.prebuilt.project.pipelines import PipelineBuilder
from flytekitplugins.prebuilt.project.schedules import ScheduleProblem, scheduled
from flytekitplugins.prebuilt.project.source import Path, Source
from flytekitplugins.prebuilt.project.tasks import TaskProblem, build_task
from flytekitplugins.prebuilt.project.templates import Templates


class Compiler:
    """Builds the entities of one checked project file; problems are collected, never raised one by one."""

    def __init__(self, source: Source, templates: Templates, bad: set[Path]):
        self.source, self.templates, self.bad = source, templates, bad
        self.project = Project(source.data["project"], source.name)
        self.problems: list[Problem] = []
        self._entries: dict[str, tuple[str, Path, dict]] = {}  # name -> (kind, path, entry)
        self._building: list[str] = []

    def compile(self) -> Project:
        for index, entry in enumerate(self.source.data.get("tasks") or []):
            path = ("tasks", index)
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                continue
            kind = "alias" if "taskRef" in entry else "pipeline" if "pipeline" in entry else "task"
            self._declare(entry["name"], kind, path, entry)  # declared even when wrong: references to it hold
        for name in list(self._entries):
            self._build(name)
        return self.project

    # ---------------------------------------------------------------- entries

    def _declare(self, name: str, kind: str, path: Path, entry: dict) -> None:
        if name in self._entries:
            first = self.source.position((*self._entries[name][1], "name"))
            self.problems.append(
                self.source.problem((*path, "name"), f"{name!r} is defined twice (first at line {first.line})")
            )
            return
        self._entries[name] = (kind, path, entry)

    def _is_bad(self, path: Path) -> bool:
        return any(bad[: len(path)] == path for bad in self.bad)

    def _build(self, name: str) -> bool:
        """Build entry ``name`` (once); False when it (or what it needs) has a problem."""
        if name in self.project.tasks or name in self.project.pipelines or name in self.project.aliases:
            return True
        if name in self._building:
            return False  # a cycle, reported where it was found
        kind, path, entry = self._entries[name]
        if self._is_bad(path):
            return False  # its problems are reported already
        self._building.append(name)
        try:
            return {"task": self._task, "alias": self._alias, "pipeline": self._pipeline}[kind](name, path, entry)
        finally:
            self._building.remove(name)

    def _reference(self, target: str, at: Path) -> bool:
        if target not in self._entries:
            self.problems.append(
                self.source.problem(
                    at, f"{target!r} names no task or pipeline of this project{did_you_mean(target, self._entries)}"
                )
            )
            return False
        if target in self._building:
            chain = " -> ".join([*self._building[self._building.index(target) :], target])
            self.problems.append(self.source.problem(at, f"a cycle: {chain}"))
            return False
        return self._build(target)

    def _alias(self, name: str, path: Path, entry: dict) -> bool:
        if not self._reference(entry["taskRef"], (*path, "taskRef")):
            return False
        self.project.aliases[name] = entry["taskRef"]
        return True

    # ---------------------------------------------------------------- tasks, pipelines, triggers

    def _task(self, name: str, path: Path, entry: dict) -> bool:
        merged = self.templates.resolve(self.source, path, entry)
        if merged is None:
            return False
        if any(src is self.source and self._is_bad(p) for src, p in merged.origins.values()):
            return False  # a template it uses has a problem, already reported
        try:
            task = build_task(self.project.name, name, merged)
        except TaskProblem as problem:
            self.problems.append(merged.problem(problem.path, problem.message, at_key=problem.at_key))
            return False
        self.project.tasks[name] = task
        self._schedule(name, path, entry, task)
        return True

    def _pipeline(self, name: str, path: Path, entry: dict) -> bool:
        builder = PipelineBuilder(self.source, self.problems, self._step, self.project.entity)
        pipeline = builder.build(self.project.name, name, path, entry)
        if pipeline is None:
            return False
        self.project.pipelines[name] = pipeline
        self._schedule(name, path, entry, pipeline.workflow)
        return True

    def _step(self, path: Path, step: dict) -> Optional[tuple[str, str]]:
        """(step name, entity name) of a step: a taskRef, or an inline task (a task of the project)."""
        if "taskRef" in step:
            if not self._reference(step["taskRef"], (*path, "taskRef")):
                return None
            return step.get("name") or step["taskRef"], step["taskRef"]
        name = step["name"]
        if name not in self._entries:
            self._entries[name] = ("task", path, step)
        elif self._entries[name][1] != path:
            self.problems.append(
                self.source.problem((*path, "name"), f"{name!r} is also a task of the project; name the step otherwise")
            )
            return None
        return (name, name) if self._build(name) else None

    def _schedule(self, name: str, path: Path, entry: dict, entity: Any) -> None:
        if not entry.get("triggers"):
            return
        try:
            plan, wrapper = scheduled(entity, entry["triggers"])
        except ScheduleProblem as problem:
            self.problems.append(self.source.problem((*path, "triggers", *problem.path), problem.message))
            return
        if wrapper is not None:  # a task's one-node workflow
            self.project.wrappers[name] = wrapper
        self.project.launch_plans[name] = plan
