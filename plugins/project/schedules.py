"""A ``triggers`` entry as Flyte schedules it: a ``LaunchPlan`` with a ``CronSchedule`` and fixed inputs.

Flyte schedules launch plans, and a launch plan launches a workflow: a scheduled task gets a one-node workflow.
"""

from __future__ import annotations

from typing import Any, Optional

from croniter import croniter
from flytekit import LaunchPlan
from flytekit.core.schedule import CronSchedule
from flytekit.core.workflow import ImperativeWorkflow, WorkflowBase
from flytekitplugins.prebuilt.kit.task import PrebuiltTask
from flytekitplugins.prebuilt.project.source import Path, plain


class ScheduleProblem(Exception):
    """A trigger is wrong; ``path`` is relative to the ``triggers`` key."""

    def __init__(self, path: Path, message: str):
        super().__init__(message)
        self.path, self.message = path, message


def scheduled(entity: Any, triggers: dict) -> tuple[LaunchPlan, Optional[WorkflowBase]]:
    """The launch plan of ``entity`` (a task or a pipeline's workflow) on ``triggers``' schedule, and the one-node
    workflow made for a task (None for a workflow); ``ScheduleProblem`` for a bad schedule or inputs."""
    cron = str(triggers["schedule"])
    if not croniter.is_valid(cron):
        message = f"{cron!r} is not a cron expression (5 fields, e.g. '0 6 * * *', or @daily, @hourly, ...)"
        raise ScheduleProblem(("schedule",), message)
    workflow = one_node_workflow(entity) if isinstance(entity, PrebuiltTask) else entity
    inputs = plain(triggers.get("inputs") or {})
    missing = [n for n in workflow.python_interface.inputs if n not in inputs]
    unknown = [n for n in inputs if n not in workflow.python_interface.inputs]
    if missing or unknown:
        what = f"needs a value for {', '.join(missing)}" if missing else f"{unknown[0]!r} is not an input"
        raise ScheduleProblem(("inputs",), f"each scheduled run {what}")
    plan_name = f"{workflow.name}.schedule"
    LaunchPlan.CACHE.pop(plan_name, None)  # a reloaded project replaces its launch plans
    try:
        plan = LaunchPlan.get_or_create(
            workflow, name=plan_name, schedule=CronSchedule(schedule=cron), default_inputs=inputs
        )
    except (TypeError, ValueError, AssertionError) as error:
        raise ScheduleProblem((), str(error)) from None
    return plan, (None if workflow is entity else workflow)


def one_node_workflow(task: PrebuiltTask) -> ImperativeWorkflow:
    """A workflow named as ``task`` that runs it: the task's inputs in, its outputs out."""
    workflow = ImperativeWorkflow(name=task.name)
    node = workflow.add_entity(
        task, **{n: workflow.add_workflow_input(n, t) for n, t in task.python_interface.inputs.items()}
    )
    for output in task.python_interface.outputs:
        workflow.add_workflow_output(output, node.outputs[output])
    return workflow
