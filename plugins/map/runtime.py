"""Runtime side of a mapped prebuilt task: one element of an ArrayNode, in the task type's image.

What each sub-task's pod gets from flytepropeller's array node handler (``pkg/controller/nodes/array/``):
``{{.input}}`` is the ArrayNode's own ``inputs.pb``, with the whole lists (``node_execution_context.go``,
``staticInputReader``); ``BATCH_JOB_ARRAY_INDEX_VAR_NAME=FLYTE_K8S_ARRAY_INDEX`` and ``FLYTE_K8S_ARRAY_INDEX=<i>``
(``execution_context.go``); ``{{.taskTemplatePath}}`` is the registered template with each list output turned into
its element type (``arrayTaskReader``), inputs unchanged. So the element picks item ``i`` of every list input that
is not bound (``constructLiteralMap``), runs the executor on a template with those inputs' element types, and
writes element outputs; the handler gathers them into lists.
"""

from __future__ import annotations

from typing import Any

from flytekit.core.array_node_map_task import ArrayNodeMapTask
from flytekit.core.base_task import TaskResolverMixin
from flytekit.core.context_manager import FlyteContext
from flytekit.core.shim_task import ExecutableTemplateShimTask
from flytekit.core.tracker import TrackedInstance
from flytekit.core.type_engine import TypeEngine
from flytekit.models import interface as interface_models
from flytekit.models import literals, types
from flytekit.models import task as task_models
from flytekit.tools.module_loader import load_object_from_module
from flytekit.utils.asyn import loop_manager


class MapTemplateResolver(TrackedInstance, TaskResolverMixin):
    """Loads the element task: the template task's own resolver (``TaskTemplateResolver``: the template and the
    executor), wrapped to pick element ``i``. Loader args, as flytekit's ``ArrayNodeMapTaskResolver`` writes them:
    ``vars <bound inputs> resolver <template task resolver> <its args...>``. ``pyflyte-map-execute`` instantiates
    the class."""

    def name(self) -> str:
        return f"{__name__}.{type(self).__name__}"

    def load_task(self, loader_args: list[str], max_concurrency: int = 0) -> MappedTemplateTask:
        _, bound, _, resolver, *resolver_args = loader_args
        inner = load_object_from_module(resolver).load_task(loader_args=resolver_args)
        return MappedTemplateTask(inner.task_template, inner.executor_type, set(filter(None, bound.split(","))))

    def loader_args(self, settings, t) -> list[str]:  # t: a PrebuiltMapTask
        run = t.python_function_task
        return [
            "vars",
            ",".join(sorted(t.bound_inputs)),
            "resolver",
            run.task_resolver.location,
            *run.task_resolver.loader_args(settings, run),
        ]

    def get_all_tasks(self) -> list:
        return []


class MappedTemplateTask(ExecutableTemplateShimTask):
    """Element ``i`` of a mapped template task (``i`` from the environment, as ``pyflyte-map-execute`` computes
    it for flytekit's own map tasks: ``ArrayNodeMapTask._compute_array_job_index``)."""

    def __init__(self, tt: task_models.TaskTemplate, executor_type: type, bound_inputs: set[str]):
        super().__init__(tt, executor_type)
        self._bound_inputs = bound_inputs

    @property
    def interface(self) -> interface_models.TypedInterface:
        """The map task's interface (list outputs): ``pyflyte-map-execute`` reads an offloaded output's type from
        it (``bin/entrypoint.py``, ``is_map_task``)."""
        tt = self.task_template
        outputs = {
            name: interface_models.Variable(types.LiteralType(collection_type=v.type), v.description)
            for name, v in tt.interface.outputs.items()
        }
        return interface_models.TypedInterface(tt.interface.inputs, outputs)

    def dispatch_execute(self, ctx: FlyteContext, input_literal_map: literals.LiteralMap) -> Any:
        index = ArrayNodeMapTask._compute_array_job_index()
        template, inputs = element(self.task_template, input_literal_map, index, self._bound_inputs)
        return ExecutableTemplateShimTask(template, self.executor_type).dispatch_execute(ctx, inputs)


def element(
    tt: task_models.TaskTemplate, inputs: literals.LiteralMap, index: int, bound: set[str]
) -> tuple[task_models.TaskTemplate, literals.LiteralMap]:
    """The template and inputs of element ``index``: item ``index`` of every list input not in ``bound``, typed as
    its element; outputs ``Optional[T]`` (a map that tolerates failures) written as ``T``, as flytekit's own map
    sub-tasks write them (the handler puts a nil literal where an element failed)."""
    ctx = FlyteContext.current_context()
    picked, input_vars = {}, {}
    for name, variable in tt.interface.inputs.items():
        input_vars[name] = variable
        literal = inputs.literals.get(name)
        if literal is None:
            continue  # the executor names a missing input
        if literal.offloaded_metadata:
            literal = loop_manager.run_sync(TypeEngine.unwrap_offloaded_literal, ctx, literal)
        element_type = variable.type.collection_type
        if name not in bound and element_type is not None:
            items = literal.collection.literals if literal.collection else None
            if items is None:
                raise ValueError(f"input {name!r}: expected a list to map over")
            if index >= len(items):
                raise IndexError(f"index {index} out of bounds for input {name!r} of {len(items)} items")
            literal = items[index]
            input_vars[name] = interface_models.Variable(element_type, variable.description)
        picked[name] = literal
    outputs = tt.interface.outputs
    output_vars = {name: interface_models.Variable(_without_none(v.type), v.description) for name, v in outputs.items()}
    template = tt.to_flyte_idl()  # the same template with the element's interface
    template.interface.CopyFrom(interface_models.TypedInterface(input_vars, output_vars).to_flyte_idl())
    return task_models.TaskTemplate.from_flyte_idl(template), literals.LiteralMap(picked)


def _without_none(literal_type: types.LiteralType) -> types.LiteralType:
    union = literal_type.union_type
    if union is None:
        return literal_type
    others = [v for v in union.variants if v.simple != types.SimpleType.NONE]
    return others[0] if len(others) == 1 and len(union.variants) == 2 else literal_type
