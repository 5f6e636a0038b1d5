"""A ``pipeline`` entry as a flytekit ``ImperativeWorkflow``: its steps in order (a list of steps is a parallel
group), each step's inputs bound to the pipeline's inputs, an earlier step's outputs or constants.

A step's input is bound, unless a taskRef step names its source, to the latest earlier group's output of the same
name, else to the pipeline input of that name (declared under ``inputs`` or added with the step's type).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

from flytekit.core.workflow import ImperativeWorkflow
from flytekitplugins.prebuilt.kit.project_keys import interface_types
from flytekitplugins.prebuilt.project.errors import Problem, did_you_mean
from flytekitplugins.prebuilt.project.source import Path, Source, plain


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


class PipelineBuilder:
    """Builds one pipeline entry; every problem of it is appended to ``problems``, the pipeline built only without.

    ``step_entity(path, step)`` is the compiler's: the (step name, entity name) of a step, building what it runs
    (None after reporting a problem); ``entity(name)`` the task or workflow of a built entity."""

    def __init__(
        self,
        source: Source,
        problems: list[Problem],
        step_entity: Callable[[Path, dict], Optional[tuple[str, str]]],
        entity: Callable[[str], Any],
    ):
        self.source, self.problems, self._step_entity, self._entity = source, problems, step_entity, entity

    def build(self, project: str, name: str, path: Path, entry: dict) -> Optional[Pipeline]:
        types = interface_types()
        self.path, self.ok = path, True
        self.workflow = ImperativeWorkflow(name=f"{project}.{name}")
        self.declared = {n: types[t] for n, t in (entry.get("inputs") or {}).items()}
        self.inputs: dict[str, Any] = {}
        self.groups: list[list[Step]] = []
        self.nodes: dict[str, Any] = {}
        self.outputs_seen: dict[str, str] = {}  # output name -> the latest step giving it
        previous: list[Any] = []
        for group_index, item in enumerate(entry["pipeline"]):
            group_path = (*path, "pipeline", group_index)
            members = [(group_path, item)] if isinstance(item, dict) else list(_numbered(group_path, item))
            previous = self._group(members, previous) or previous
        unused = [n for n in self.declared if n not in self.inputs]
        for unused_name in unused:
            self._report((*path, "inputs", unused_name), "no step uses this input", at_key=True)
        outputs = self._outputs(entry.get("outputs")) if self.ok and not unused else None
        if outputs is None:
            return None
        for output, (step_name, output_of) in outputs.items():
            self.workflow.add_workflow_output(output, self.nodes[step_name].outputs[output_of])
        return Pipeline(name, self.groups, self.inputs, outputs, self.workflow)

    def _report(self, path: Path, message: str, at_key: bool = False) -> None:
        self.problems.append(self.source.problem(path, message, at_key=at_key))

    def _group(self, members: list[tuple[Path, dict]], previous: list[Any]) -> list[Any]:
        """The nodes of one group; each runs after every node of the group before (even with no data between)."""
        group: list[Step] = []
        current, given = [], {}
        for step_path, step in members:
            added = self._step(step_path, step, group)
            if added is None:
                continue
            node, built, outputs = added
            for before in previous:
                before >> node
            self.nodes[built.name] = node
            current.append(node)
            group.append(built)
            given.update({o: built.name for o in outputs})
        self.outputs_seen.update(given)  # a group's outputs are seen by the steps after it, not by each other
        self.groups.append(group)
        return current

    def _step(self, path: Path, step: dict, group: list[Step]) -> Optional[tuple[Any, Step, Any]]:
        """The node of one step, its ``Step`` and its outputs; None (and ``ok`` False) after reporting a problem."""
        built = self._step_entity(path, step)
        if built is None:
            self.ok = False
            return None
        step_name, entity_name = built
        if step_name in self.nodes or step_name in [s.name for s in group] or step_name == "inputs":
            self._report(path, f"step {step_name!r} is not unique; give it another name:")
            self.ok = False
            return None
        entity = self._entity(entity_name)
        bindings = self._bindings(step, path, entity)
        self._refuse_unknown_inputs(step, path, entity_name, entity, bindings)
        if not self.ok:
            return None
        node = self.workflow.add_entity(entity, **{n: self._argument(b) for n, b in bindings.items()})
        return node, Step(step_name, entity_name, bindings), entity.python_interface.outputs

    def _bindings(self, step: dict, path: Path, entity: Any) -> dict[str, Binding]:
        bindings = {}
        for input_name, python_type in entity.python_interface.inputs.items():
            binding = self._bind(step, path, input_name, python_type)
            if binding is None:
                self.ok = False
            else:
                bindings[input_name] = binding
        return bindings

    def _refuse_unknown_inputs(self, step: dict, path: Path, entity_name: str, entity: Any, bindings: dict) -> None:
        known = list(entity.python_interface.inputs)
        for unknown in [n for n in (step.get("inputs") or {}) if "taskRef" in step and n not in bindings]:
            message = f"{entity_name} has no input {unknown!r}{did_you_mean(unknown, known)}; inputs: {known}"
            self._report((*path, "inputs", unknown), message, at_key=True)
            self.ok = False

    def _argument(self, binding: Binding) -> Any:
        """What a node's input is given: an earlier node's output, a workflow input (added once) or a constant."""
        if binding.kind == "output":
            return self.nodes[binding.step].outputs[binding.name]
        if binding.kind == "input":
            if binding.name not in self.workflow.inputs:
                self.workflow.add_workflow_input(binding.name, self.inputs[binding.name])
            return self.workflow.inputs[binding.name]
        return binding.value

    def _bind(self, step: dict, path: Path, input_name: str, python_type: Any) -> Optional[Binding]:
        given = (step.get("inputs") or {}).get(input_name) if "taskRef" in step else None
        if isinstance(given, dict):
            return Binding("value", value=plain(given["value"]))
        if isinstance(given, str):
            binding = self._named_source(path, input_name, given)
            if binding is None or binding.kind == "output":
                return binding
        elif input_name in self.outputs_seen:
            return Binding("output", input_name, step=self.outputs_seen[input_name])
        else:
            binding = Binding("input", input_name)
        wanted = self.declared.get(binding.name, self.inputs.get(binding.name, python_type))
        if wanted != python_type:
            self._report(path, f"input {input_name!r} is {python_type}, but the pipeline's is {wanted}")
            return None
        self.inputs[binding.name] = python_type
        return binding

    def _named_source(self, path: Path, input_name: str, given: str) -> Optional[Binding]:
        """``inputs.<name>`` or ``<step>.<output>`` as a binding; None after reporting a wrong one."""
        source_name, _, output = given.partition(".")
        if source_name == "inputs":
            return Binding("input", output)
        if source_name not in self.nodes:
            message = f"{given!r}: no earlier step {source_name!r}{did_you_mean(source_name, self.nodes)}"
            self._report((*path, "inputs", input_name), message)
            return None
        outputs = self.nodes[source_name].flyte_entity.python_interface.outputs
        if output not in outputs:
            message = f"step {source_name!r} has no output {output!r}{did_you_mean(output, outputs)}"
            self._report((*path, "inputs", input_name), message)
            return None
        return Binding("output", output, step=source_name)

    def _outputs(self, declared: Optional[dict]) -> Optional[dict[str, tuple[str, str]]]:
        """Output -> (step, its output): the declared ones, else a last single step's; None after a problem."""
        if not declared:
            if self.groups and len(self.groups[-1]) == 1:
                last = self.groups[-1][0].name
                return {o: (last, o) for o in self.nodes[last].flyte_entity.python_interface.outputs}
            return {}
        outputs = {}
        for output, reference in declared.items():
            step_name, _, output_of = reference.partition(".")
            node = self.nodes.get(step_name)
            if node is None or output_of not in node.flyte_entity.python_interface.outputs:
                choices = [f"{s}.{o}" for s, n in self.nodes.items() for o in n.flyte_entity.python_interface.outputs]
                message = f"{reference!r} is no step's output{did_you_mean(reference, choices)}; outputs: {choices}"
                self._report((*self.path, "outputs", output), message)
                return None
            outputs[output] = (step_name, output_of)
        return outputs


def _numbered(path: Path, steps: list) -> Iterator[tuple[Path, dict]]:
    for index, step in enumerate(steps):
        yield (*path, index), step
