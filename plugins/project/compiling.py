"""Compiling a checked project into the entities the Python API makes: each task is built by its type's task class
(``SQLTask``, ``ScriptTask``, ``TrainTask``) from the same config class, a pipeline is a flytekit
``ImperativeWorkflow`` and a trigger a ``LaunchPlan`` with a ``CronSchedule``. No code is generated.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from dataclasses import dataclass, field
from typing import Any, Optional

from croniter import croniter
from flytekit import LaunchPlan
from flytekit.core.schedule import CronSchedule
from flytekit.core.workflow import ImperativeWorkflow, WorkflowBase
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile
from flytekit.types.structured import StructuredDataset
from flytekitplugins.prebuilt.kit.config import ConfigError
from flytekitplugins.prebuilt.kit.spec import task_types
from flytekitplugins.prebuilt.kit.task import PrebuiltTask
from flytekitplugins.prebuilt.project.errors import Problem, did_you_mean
from flytekitplugins.prebuilt.project.schema import RESOURCE_NAMES
from flytekitplugins.prebuilt.project.shorthands import SHORTHANDS, ShorthandError, split_command
from flytekitplugins.prebuilt.project.source import Path, Source
from flytekitplugins.prebuilt.project.templates import Merged, Templates

PYTHON_TYPES: dict[str, Any] = {
    "str": str, "int": int, "float": float, "bool": bool, "datetime": datetime.datetime, "date": datetime.date,
    "file": FlyteFile, "directory": FlyteDirectory, "dataset": StructuredDataset, "dict": dict,
    "list[str]": list[str], "list[int]": list[int], "list[float]": list[float],
}  # fmt: skip
TASK_KEYWORDS = ("retries", "timeout", "interruptible", "cache", "cache_version", "container_image")


@dataclass(frozen=True)
class Binding:
    """Where a step's input comes from: a pipeline input, an earlier step's output, or a constant."""

    kind: str  # "input", "output" or "value"
    name: str = ""  # the pipeline input's or the output's name
    step: str = ""
    value: Any = None


@dataclass
class Step:
    name: str
    entity: str  # the task or pipeline it runs (a name of this project)
    bindings: dict[str, Binding]


@dataclass
class Pipeline:
    name: str
    groups: list[list[Step]]  # in order; the steps of one group run in parallel
    inputs: dict[str, Any]
    outputs: dict[str, tuple[str, str]]  # output -> (step, its output)
    workflow: ImperativeWorkflow


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


def plain(value: Any) -> Any:
    """ruamel's values (CommentedMap, ScalarFloat, ...) as plain Python ones."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


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
            if kind == "task":
                task = self._task(name, path, entry)
                if task is not None:
                    self.project.tasks[name] = task
                    self._trigger(name, path, entry, task)
                return task is not None
            if kind == "alias":
                if self._reference(entry["taskRef"], (*path, "taskRef")):
                    self.project.aliases[name] = entry["taskRef"]
                    return True
                return False
            return self._pipeline(name, path, entry)
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

    # ---------------------------------------------------------------- tasks

    def _task(self, name: str, path: Path, entry: dict) -> Optional[PrebuiltTask]:
        merged = self.templates.resolve(self.source, path, entry)
        if merged is None:
            return None
        if any(src is self.source and self._is_bad(p) for src, p in merged.origins.values()):
            return None  # a template it uses has a problem, already reported
        try:
            return build_task(self.project.name, name, merged)
        except TaskProblem as problem:
            self.problems.append(merged.problem(problem.path, problem.message, at_key=problem.at_key))
            return None

    def _trigger(self, name: str, path: Path, entry: dict, entity: Any) -> None:
        triggers = entry.get("triggers")
        if not triggers:
            return
        cron = str(triggers["schedule"])
        if not croniter.is_valid(cron):
            message = f"{cron!r} is not a cron expression (5 fields, e.g. '0 6 * * *', or @daily, @hourly, ...)"
            self.problems.append(self.source.problem((*path, "triggers", "schedule"), message))
            return
        workflow = entity
        if isinstance(entity, PrebuiltTask):  # Flyte schedules launch plans, and a launch plan launches a workflow
            workflow = ImperativeWorkflow(name=entity.name)
            node = workflow.add_entity(
                entity, **{n: workflow.add_workflow_input(n, t) for n, t in entity.python_interface.inputs.items()}
            )
            for output in entity.python_interface.outputs:
                workflow.add_workflow_output(output, node.outputs[output])
            self.project.wrappers[name] = workflow
        inputs = plain(triggers.get("inputs") or {})
        missing = [n for n in workflow.python_interface.inputs if n not in inputs]
        unknown = [n for n in inputs if n not in workflow.python_interface.inputs]
        if missing or unknown:
            what = f"needs a value for {', '.join(missing)}" if missing else f"{unknown[0]!r} is not an input"
            self.problems.append(self.source.problem((*path, "triggers", "inputs"), f"each scheduled run {what}"))
            return
        plan_name = f"{workflow.name}.schedule"
        LaunchPlan.CACHE.pop(plan_name, None)  # a reloaded project replaces its launch plans
        try:
            plan = LaunchPlan.get_or_create(
                workflow, name=plan_name, schedule=CronSchedule(schedule=cron), default_inputs=inputs
            )
        except (TypeError, ValueError, AssertionError) as error:
            self.problems.append(self.source.problem((*path, "triggers"), str(error)))
            return
        self.project.launch_plans[name] = plan

    # ---------------------------------------------------------------- pipelines

    def _pipeline(self, name: str, path: Path, entry: dict) -> bool:
        workflow = ImperativeWorkflow(name=f"{self.project.name}.{name}")
        declared = {n: PYTHON_TYPES[t] for n, t in (entry.get("inputs") or {}).items()}
        inputs: dict[str, Any] = {}
        groups: list[list[Step]] = []
        nodes: dict[str, Any] = {}
        outputs_seen: dict[str, str] = {}  # output name -> the latest step giving it
        previous: list[Any] = []
        ok = True
        for group_index, item in enumerate(entry["pipeline"]):
            group_path = (*path, "pipeline", group_index)
            members = (
                [(group_path, item)] if isinstance(item, dict) else [((*group_path, i), s) for i, s in enumerate(item)]
            )
            group, current, given = [], [], {}
            for step_path, step in members:
                built = self._step(name, step_path, step)
                if built is None:
                    ok = False
                    continue
                step_name, entity_name = built
                if step_name in nodes or step_name in [s.name for s in group] or step_name == "inputs":
                    self.problems.append(
                        self.source.problem(step_path, f"step {step_name!r} is not unique; give it another name:")
                    )
                    ok = False
                    continue
                entity = self.project.entity(entity_name)
                bindings, kwargs = {}, {}
                for input_name, python_type in entity.python_interface.inputs.items():
                    binding = self._bind(
                        step, step_path, input_name, python_type, nodes, outputs_seen, declared, inputs
                    )
                    if binding is None:
                        ok = False
                        continue
                    bindings[input_name] = binding
                    if binding.kind == "output":
                        kwargs[input_name] = nodes[binding.step].outputs[binding.name]
                    elif binding.kind == "input":
                        if binding.name not in workflow.inputs:
                            workflow.add_workflow_input(binding.name, inputs[binding.name])
                        kwargs[input_name] = workflow.inputs[binding.name]
                    else:
                        kwargs[input_name] = binding.value
                extra = [n for n in (step.get("inputs") or {}) if "taskRef" in step and n not in bindings]
                for unknown in extra:
                    known = list(entity.python_interface.inputs)
                    self.problems.append(
                        self.source.problem(
                            (*step_path, "inputs", unknown),
                            f"{entity_name} has no input {unknown!r}{did_you_mean(unknown, known)}; inputs: {known}",
                            at_key=True,
                        )
                    )
                    ok = False
                if not ok:
                    continue
                node = workflow.add_entity(entity, **kwargs)
                for before in previous:
                    before >> node  # sequential steps run in order even when no data passes between them
                nodes[step_name] = node
                current.append(node)
                group.append(Step(step_name, entity_name, bindings))
                given.update({o: step_name for o in entity.python_interface.outputs})
            outputs_seen.update(given)  # a group's outputs are seen by the steps after it, not by each other
            groups.append(group)
            previous = current or previous
        unused = [n for n in declared if n not in inputs]
        for unused_name in unused:
            self.problems.append(
                self.source.problem((*path, "inputs", unused_name), "no step uses this input", at_key=True)
            )
        if not ok or unused:
            return False
        outputs: dict[str, tuple[str, str]] = {}
        if entry.get("outputs"):
            for output, reference in entry["outputs"].items():
                step_name, _, output_of = reference.partition(".")
                node = nodes.get(step_name)
                if node is None or output_of not in node.flyte_entity.python_interface.outputs:
                    choices = [f"{s}.{o}" for s, n in nodes.items() for o in n.flyte_entity.python_interface.outputs]
                    self.problems.append(
                        self.source.problem(
                            (*path, "outputs", output),
                            f"{reference!r} is no step's output{did_you_mean(reference, choices)}; outputs: {choices}",
                        )
                    )
                    return False
                outputs[output] = (step_name, output_of)
        elif groups and len(groups[-1]) == 1:
            last = groups[-1][0]
            outputs = {o: (last.name, o) for o in nodes[last.name].flyte_entity.python_interface.outputs}
        for output, (step_name, output_of) in outputs.items():
            workflow.add_workflow_output(output, nodes[step_name].outputs[output_of])
        self.project.pipelines[name] = Pipeline(name, groups, inputs, outputs, workflow)
        self._trigger(name, path, entry, workflow)
        return True

    def _step(self, pipeline: str, path: Path, step: dict) -> Optional[tuple[str, str]]:
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

    def _bind(self, step, path, input_name, python_type, nodes, outputs_seen, declared, inputs) -> Optional[Binding]:
        given = (step.get("inputs") or {}).get(input_name) if "taskRef" in step else None
        if isinstance(given, dict):
            return Binding("value", value=plain(given["value"]))
        if isinstance(given, str):
            source_name, _, output = given.partition(".")
            if source_name == "inputs":
                binding = Binding("input", output)
            elif source_name in nodes:
                outputs = nodes[source_name].flyte_entity.python_interface.outputs
                if output not in outputs:
                    self.problems.append(
                        self.source.problem(
                            (*path, "inputs", input_name),
                            f"step {source_name!r} has no output {output!r}{did_you_mean(output, outputs)}",
                        )
                    )
                    return None
                return Binding("output", output, step=source_name)
            else:
                message = f"{given!r}: no earlier step {source_name!r}{did_you_mean(source_name, nodes)}"
                self.problems.append(self.source.problem((*path, "inputs", input_name), message))
                return None
        elif input_name in outputs_seen:
            return Binding("output", input_name, step=outputs_seen[input_name])
        else:
            binding = Binding("input", input_name)
        wanted = declared.get(binding.name, inputs.get(binding.name, python_type))
        if wanted != python_type:
            self.problems.append(
                self.source.problem(path, f"input {input_name!r} is {python_type}, but the pipeline's is {wanted}")
            )
            return None
        inputs[binding.name] = python_type
        return binding


class TaskProblem(Exception):
    def __init__(self, path: Path, message: str, at_key: bool = False):
        super().__init__(message)
        self.path, self.message, self.at_key = path, message, at_key


def build_task(project: str, name: str, merged: Merged) -> PrebuiltTask:
    """The task the Python API builds for these keys: its type's task class, called as a user would."""
    fields = plain(merged.values)
    specs = task_types()
    spec = specs[fields.get("type", "script")]
    cls = spec.task_class()
    config_names = [f.name for f in dataclasses.fields(spec.config) if f.init]
    config, keywords, outputs = {}, {}, {}
    for shorthand in SHORTHANDS:
        if shorthand.key in fields and shorthand.applies_to(config_names):
            clash = [
                f for f in shorthand.writes if f in fields and f != shorthand.key and shorthand.key != "environment"
            ]
            if clash:
                raise TaskProblem((clash[0],), f"give {shorthand.key} or {clash[0]}, not both", at_key=True)
            tag = getattr(getattr(merged.values[shorthand.key], "tag", None), "value", None)
            try:
                expanded = shorthand.expand(fields[shorthand.key], tag)
            except ShorthandError as error:
                raise TaskProblem(error.path, str(error)) from None
            for key, value in expanded.fields.items():
                config[key] = {**value, **config.get(key, {})} if isinstance(value, dict) else value
            keywords.update(expanded.keywords)
            outputs.update(expanded.outputs)
    for key in config_names:
        if key in fields and not (key == "artifacts" and "artifacts" in config):
            value = fields[key]
            config[key] = {**config[key], **value} if isinstance(value, dict) and key in config else value
    if "command" in config:
        config["command"] = split_command(config["command"], bool(config.get("shell")))
    try:
        return _construct(cls, spec, project, name, fields, config, keywords, outputs, merged)
    except ConfigError as error:
        raise TaskProblem(_yaml_path(error.field, fields), str(error)[len(error.field) + 2 :]) from None


def _construct(cls, spec, project, name, fields, config, keywords, outputs, merged) -> PrebuiltTask:
    from flytekitplugins.prebuilt.kit.quantities import resources
    from flytekitplugins.prebuilt.script.task import ScriptTask
    from flytekitplugins.prebuilt.sql.task import SQLTask

    config_object = spec.config.from_custom(config)
    for key in TASK_KEYWORDS:
        if key in fields:
            keywords[key] = fields[key]
    inputs = {n: PYTHON_TYPES[t] for n, t in (fields.get("inputs") or {}).items()}
    requested = {RESOURCE_NAMES[k]: v for k, v in (fields.get("resources") or {}).items()}
    limited = {RESOURCE_NAMES[k]: v for k, v in (fields.get("limits") or {}).items()}
    full_name = f"{project}.{name}"
    if issubclass(cls, SQLTask):
        if "query" not in fields:
            raise TaskProblem((), "missing required key 'query' (an sql task's query template)")
        returns_rows = "rows_affected" not in (fields.get("outputs") or {})
        for key, given in (("requests", requested), ("limits", limited)):
            if given:
                keywords[key] = resources(given, key)
        return cls(
            name=full_name,
            query_template=fields["query"],
            config=config_object,
            inputs=inputs,
            output_schema_type=StructuredDataset if returns_rows else None,
            **keywords,
        )
    if issubclass(cls, ScriptTask):
        for key in ("ignore", "bundle_store"):
            if key in fields:
                keywords[key] = fields[key]
        declared = {n: PYTHON_TYPES[t] for n, t in (fields.get("outputs") or {}).items()}
        source = os.path.normpath(os.path.join(_folder(merged, "source"), fields.get("source", ".")))
        return cls(
            name=full_name,
            source=source,
            config=config_object,
            inputs=inputs,
            outputs={**{n: PYTHON_TYPES[t] for n, t in outputs.items()}, **declared},
            requests=requested or None,
            limits=limited or None,
            **keywords,
        )
    return cls(name=full_name, config=config_object, **keywords)


def _folder(merged: Merged, key: str) -> str:
    """The folder of the file that gave ``key`` (a template's source is relative to the template's file)."""
    origin = merged.origins.get((key,))
    return (origin[0] if origin else merged.home).folder


def _yaml_path(field_name: str, fields: dict) -> Path:
    """The YAML keys a ``ConfigError`` field (``config.secret_env.TOKEN``, ``requests.cpu``) is about."""
    parts = field_name.split(".")
    if parts[0] in ("config", "custom"):
        parts = parts[1:]
    if not parts:
        return ()
    head = {"requests": "resources", "query_template": "query", "output_schema_type": "outputs"}.get(parts[0], parts[0])
    if head not in fields:
        for shorthand in SHORTHANDS:
            if head in shorthand.writes and shorthand.key in fields:
                return (shorthand.key,)
        return ()
    return (head, *parts[1:])
