"""``map_task`` over a prebuilt task: flytekit's ``ArrayNodeMapTask`` for template tasks.

flytekit refuses to map anything but a ``PythonFunctionTask`` or ``PythonInstanceTask``
(``flytekit/core/array_node_map_task.py``; flyte#6277, flytekit#3249 are open about container tasks), and its
runtime resolver loads a task from the user's code. A prebuilt task has no user code: everything is in its template.
``PrebuiltMapTask`` is an ``ArrayNodeMapTask`` (so a ``@workflow`` compiles it and flytekit's translator serializes it
to an ArrayNode, ``get_serializable_array_node_map_task``) whose sub-task template is the prebuilt task's template
with list inputs and outputs (``transform_interface_to_list_interface``, as flytepropeller's compiler expects:
``pkg/compiler/validators/interface.go``), running ``pyflyte-map-execute`` with this package's resolver
(``map.runtime``), which picks element ``i`` of each list as the backend's array node tells it.

Locally (``pyflyte run``, a call) the elements run one after another in this process, as flytekit runs its own map
tasks; under the emulator and on a cluster, one pod per element.
"""

from __future__ import annotations

import functools
import hashlib
import math
from contextlib import contextmanager
from typing import Any, Optional, Union

from flyteidl.core import workflow_pb2
from flytekit.configuration import SerializationSettings
from flytekit.core.array_node_map_task import ArrayNodeMapTask
from flytekit.core.array_node_map_task import map_task as flytekit_map_task
from flytekit.core.base_task import PythonTask
from flytekit.core.context_manager import FlyteContext
from flytekit.core.interface import transform_interface_to_list_interface
from flytekit.core.utils import _serialize_pod_spec
from flytekit.loggers import logger
from flytekit.models import literals
from flytekit.models import task as task_models
from flytekitplugins.prebuilt.kit.config import ConfigError
from flytekitplugins.prebuilt.kit.task import PrebuiltTask

NIL = literals.Literal(scalar=literals.Scalar(none_type=literals.Void()))  # a failed element's output (handler.go)


def map_task(
    target: Any,
    concurrency: Optional[int] = None,
    min_successes: Optional[int] = None,
    min_success_ratio: float = 1.0,
    run_all_sub_nodes: bool = False,
    **kwargs,
):
    """flytekit's ``map_task`` that also maps prebuilt tasks (``SQLTask``, ``ScriptTask``, ...), or
    ``functools.partial`` of one (its keywords are bound: passed whole to every element).

    ``concurrency``: at most this many elements run at once (None or 0: as many as the cluster allows).
    ``min_success_ratio`` / ``min_successes``: how many elements must succeed; below 1 (or with
    ``min_successes``), each output is a list of optionals, ``None`` where an element failed.
    Anything else goes to flytekit's ``map_task``.
    """
    task = target.func if isinstance(target, functools.partial) else target
    if not isinstance(task, PrebuiltTask):
        return flytekit_map_task(
            target,
            concurrency=concurrency,
            min_successes=min_successes,
            min_success_ratio=min_success_ratio,
            run_all_sub_nodes=run_all_sub_nodes,
            **kwargs,
        )
    return PrebuiltMapTask(
        target,
        concurrency=concurrency,
        min_successes=min_successes,
        min_success_ratio=None if min_successes is not None else min_success_ratio,
        run_all_sub_nodes=run_all_sub_nodes,
        **kwargs,
    )


class PrebuiltMapTask(ArrayNodeMapTask):
    """An ArrayNode over a prebuilt task. Its registered template is the task's (custom, image, resources, secrets,
    pod template, metadata) with list inputs (bound inputs keep their type) and list outputs.

    ``ArrayNodeMapTask.__init__`` refuses template tasks, so this sets up the same attributes itself; every other
    method of flytekit's class (compiling in a workflow, local inputs, serialization) is used as it is.
    """

    def __init__(
        self,
        target: Union[PrebuiltTask, functools.partial],
        concurrency: Optional[int] = None,
        min_successes: Optional[int] = None,
        min_success_ratio: Optional[float] = None,
        run_all_sub_nodes: bool = False,
        **kwargs,
    ):
        partial = target if isinstance(target, functools.partial) else None
        task = partial.func if partial else target
        if not isinstance(task, PrebuiltTask):
            raise ConfigError("target", f"expected a prebuilt task (or a functools.partial of one), got {task!r}")
        if partial is not None and partial.args:
            raise ConfigError("target", "bind a partial's inputs by name (functools.partial(task, x=...))")
        if task.task_type != task.SPEC.flyte_task_type:
            raise ConfigError(
                "target", f"{task.name} runs as Flyte's {task.task_type!r} plugin; only container tasks can be mapped"
            )
        _check_count(concurrency, "concurrency", minimum=0)
        _check_count(min_successes, "min_successes", minimum=1)
        if min_success_ratio is not None and not (
            isinstance(min_success_ratio, (int, float)) and 0 <= min_success_ratio <= 1
        ):
            raise ConfigError("min_success_ratio", f"expected a number from 0 to 1, got {min_success_ratio!r}")
        inputs = task.python_interface.inputs
        bound = set(partial.keywords) if partial else set()
        unknown = sorted(bound - set(inputs))
        if unknown:
            raise ConfigError("target", f"{task.name} has no input {unknown[0]!r}; its inputs are {sorted(inputs)}")
        if not set(inputs) - bound:
            raise ConfigError("target", f"{task.name} has no unbound input to map over")

        # as ArrayNodeMapTask.__init__ sets them (the attributes its other methods read)
        self._partial = partial
        self._bound_inputs = bound
        self._bound_inputs_values: dict[str, Any] = {}
        self._run_task = task
        self._cmd_prefix: Optional[list[str]] = None
        self._concurrency = concurrency
        self._min_successes = min_successes
        self._min_success_ratio = min_success_ratio
        self._run_all_sub_nodes = run_all_sub_nodes
        # an element may fail and the node still succeed: its outputs are then None (the backend's nil literal)
        tolerant = min_successes is not None or (min_success_ratio is not None and min_success_ratio < 1)
        self._collection_interface = transform_interface_to_list_interface(
            task.python_interface, bound, set(), optional_outputs=tolerant
        )
        self._execution_mode = workflow_pb2.ArrayNode.FULL_STATE  # as flytekit sets it for any other task class
        digest = hashlib.md5(
            f"{','.join(sorted(bound))}{concurrency}{min_successes}{min_success_ratio}".encode()
        ).hexdigest()
        self._name = f"{task.name}.map_{digest}-arraynode"
        PythonTask.__init__(
            self,
            name=self._name,
            interface=self._collection_interface,
            task_type=task.task_type,
            task_config=None,
            task_type_version=task.task_type_version,
            security_ctx=task.security_context,
            **kwargs,
        )
        self.sub_node_metadata = PythonTask.construct_node_metadata(self)
        self.sub_node_metadata._name = self.name

    @property
    def bound_input_values(self) -> dict[str, Any]:
        """The inputs a ``functools.partial`` bound, by name: every element gets them whole (flytekit's
        ``ArrayNodeMapTask.__call__`` adds them to a call's inputs; the emulator adds them to a run's)."""
        return dict(self._partial.keywords) if self._partial else {}

    @property
    def metadata(self):
        """The mapped task's, read when serialized: its automatic ``cache_version`` follows the image it resolves."""
        return self._run_task.metadata

    @property
    def enable_deck(self) -> bool:
        return self._run_task.enable_deck

    # ------------------------------------------------------------------ the sub-task template

    def get_command(self, settings: SerializationSettings) -> list[str]:
        """``pyflyte-map-execute`` as flytekit's own map tasks run (``ArrayNodeMapTask.get_command``), with this
        package's resolver in front of the template task's own (``{{.taskTemplatePath}}`` and the executor)."""
        from flytekitplugins.prebuilt.map.runtime import MapTemplateResolver

        resolver = MapTemplateResolver()
        return [
            *(self._cmd_prefix or []),
            "pyflyte-map-execute",
            "--inputs",
            "{{.input}}",
            "--output-prefix",
            "{{.outputPrefix}}",
            "--raw-output-data-prefix",
            "{{.rawOutputDataPrefix}}",
            "--checkpoint-path",
            "{{.checkpointOutputPrefix}}",
            "--prev-checkpoint",
            "{{.prevCheckpointPrefix}}",
            "--resolver",
            resolver.name(),
            "--",
            *resolver.loader_args(settings, self),
        ]

    @contextmanager
    def prepare_target(self):
        yield  # flytekit swaps a function task's command here; ours is built by get_command

    def get_container(self, settings: SerializationSettings) -> Optional[task_models.Container]:
        container = self._run_task.get_container(settings)
        return None if container is None else self._with_command(container, settings)

    def get_k8s_pod(self, settings: SerializationSettings) -> Optional[task_models.K8sPod]:
        run = self._run_task
        pod = run.get_k8s_pod(settings)
        if pod is None:
            return None
        container = self._with_command(run.container_definition(settings), settings)
        return task_models.K8sPod(
            pod_spec=_serialize_pod_spec(run.pod_template, container, settings), metadata=pod.metadata
        )

    def get_sql(self, settings: SerializationSettings) -> None:
        return None

    def _with_command(self, container: task_models.Container, settings: SerializationSettings):
        return task_models.Container(
            image=container.image,
            command=container.command,
            args=self.get_command(settings),
            resources=container.resources,
            env=container.env,
            config=container.config,
            data_loading_config=container.data_loading_config,
        )

    # ------------------------------------------------------------------ local runs

    def dispatch_execute(self, ctx: FlyteContext, input_literal_map: literals.LiteralMap) -> literals.LiteralMap:
        """A local run (``pyflyte run``, a call): every element in this process, in order, through the task's own
        ``dispatch_execute``, as flytepropeller's array node handler runs them (``pkg/controller/nodes/array/``):
        item ``i`` of each list input not bound (lists of different lengths are refused), the node fails once too
        few elements can still succeed (``min_successes``, else ``ceil(min_success_ratio * n)``), a failed
        element's outputs are the nil literal, each output is gathered into one list."""
        run, given = self._run_task, input_literal_map.literals
        mapped = [name for name in run.python_interface.inputs if name not in self.bound_inputs and name in given]
        lengths = {name: len(given[name].collection.literals) for name in mapped}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"{self.name}: input lists have different lengths: {lengths}")
        n = lengths[mapped[0]]
        needed = required_successes(n, self._min_successes, self._min_success_ratio)
        if needed > n:
            raise ValueError(f"{self.name}: {cannot_succeed(needed, n)}")
        gathered: dict[str, list[literals.Literal]] = {name: [] for name in run.python_interface.outputs}
        failed = 0
        for index in range(n):
            element = {name: (v.collection.literals[index] if name in mapped else v) for name, v in given.items()}
            try:
                outputs = run.dispatch_execute(ctx, literals.LiteralMap(element)).literals
            except Exception as error:
                failed += 1
                if n - failed < needed:
                    logger.error(f"{self.name}: element {index} failed; fewer than {needed} of {n} can succeed")
                    raise
                logger.warning(f"{self.name}: element {index} failed, its outputs are None: {error}")
                outputs = dict.fromkeys(gathered, NIL)
            for name, items in gathered.items():
                items.append(outputs[name])
        return literals.LiteralMap(
            {name: literals.Literal(collection=literals.LiteralCollection(items)) for name, items in gathered.items()}
        )


def required_successes(n: int, min_successes: Optional[int], min_success_ratio: Optional[float]) -> int:
    """How many of ``n`` elements must succeed: flytepropeller's ``pkg/controller/nodes/array/handler.go``
    (``min_successes`` first, else ``ceil(ratio * n)``, else all)."""
    if min_successes is not None:
        return min_successes
    if min_success_ratio is not None:
        return math.ceil(min_success_ratio * n)
    return n


def cannot_succeed(needed: int, n: int) -> str:
    """Why a map of ``n`` elements that needs ``needed`` successes fails before any element runs."""
    return (
        f"min_successes is {needed} but the map has {n} element(s): it can never succeed; "
        f"lower min_successes to at most {n}, or use min_success_ratio"
    )


def _check_count(value: Any, field: str, minimum: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
        raise ConfigError(field, f"expected a whole number >= {minimum}, got {value!r}")
