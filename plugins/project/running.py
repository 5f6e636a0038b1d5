"""Running a project's task or pipeline locally through the platform emulator (``flyte-prebuilt project run``).

A task runs as the cluster would run its template; a pipeline runs its steps in order, the steps of a parallel
group at the same time, each step's inputs taken from the pipeline's inputs and earlier steps' outputs as its
workflow binds them. On a cluster, Flyte runs the workflow itself (``project.entities``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional

from flytekitplugins.prebuilt.emulator import EmulatedRun, Emulator, TaskFailed
from flytekitplugins.prebuilt.project.entities import Project
from flytekitplugins.prebuilt.project.pipelines import Binding


def run(
    project: Project,
    name: str,
    inputs: dict[str, Any],
    emulator: Emulator,
    in_container: bool = False,
    on_step: Optional[Callable[[str, EmulatedRun], None]] = None,
) -> dict[str, Any]:
    """The outputs of task or pipeline ``name``; ``TaskFailed`` (its ``step`` named) from the first step that fails.
    ``on_step(step, run)`` sees each task's run as it ends (its log, its outputs)."""
    target = project.target(name)
    if target in project.tasks:
        try:
            result = emulator.run(project.tasks[target], inputs, in_container=in_container)
        except TaskFailed as failure:
            failure.step = getattr(failure, "step", None) or name
            raise
        if on_step:
            on_step(name, result)
        return result.outputs
    pipeline = project.pipelines[target]
    done: dict[str, dict[str, Any]] = {}

    def value(binding: Binding) -> Any:
        if binding.kind == "input":
            return inputs[binding.name]
        if binding.kind == "output":
            return done[binding.step][binding.name]
        return binding.value

    def step_run(step):
        step_inputs = {input_name: value(b) for input_name, b in step.bindings.items()}
        return step.name, run(project, step.entity, step_inputs, emulator, in_container, on_step)

    for group in pipeline.groups:
        with ThreadPoolExecutor(max_workers=len(group)) as pool:
            for step_name, outputs in pool.map(step_run, group):
                done[step_name] = outputs
    return {output: done[step][output_of] for output, (step, output_of) in pipeline.outputs.items()}
