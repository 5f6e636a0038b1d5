"""`map_task` over prebuilt tasks, serialized by flytekit's own translator: the ArrayNode (parallelism, success
criterion, bound inputs), its sub-task template (our image, custom and executor behind `pyflyte-map-execute`, list
interface), and the runtime's choice of element i (`map.runtime.element`) as flytepropeller's array node hands it."""

import functools
import typing
from collections import OrderedDict
from pathlib import Path

import pytest
from flyteidl.core import workflow_pb2
from flytekit import PodTemplate, Secret, task, workflow
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.core.array_node_map_task import ArrayNodeMapTask
from flytekit.core.type_engine import TypeEngine
from flytekit.models import literals
from flytekit.tools.translator import get_serializable
from flytekit.types.structured import StructuredDataset
from flytekitplugins.prebuilt.emulator.array_node import array_task_template
from flytekitplugins.prebuilt.kit import ConfigError
from flytekitplugins.prebuilt.kit.images import default_image
from flytekitplugins.prebuilt.map import PrebuiltMapTask, map_task
from flytekitplugins.prebuilt.map.runtime import MapTemplateResolver, element
from flytekitplugins.prebuilt.script import ScriptPreset, ScriptTask
from flytekitplugins.prebuilt.sql import SQLTask
from flytekitplugins.prebuilt.train import TrainTask
from kubernetes.client import V1Container, V1PodSpec

GOLDEN = Path(__file__).parent / "golden"
SETTINGS = SerializationSettings(project="p", domain="d", version="v1", image_config=ImageConfig.auto_default_image())
SD = StructuredDataset


def sql(**keywords):
    return SQLTask(
        "orders_of",
        "select * from orders where customer = :customer and amount >= :min_amount",
        url="sqlite://",
        inputs={"customer": str, "min_amount": float},
        **keywords,
    )


def script(**keywords):
    return ScriptTask(
        "score",
        source=str(GOLDEN / "script_src"),
        command=["python", "main.py", "{{.inputs.n}}"],
        inputs={"n": int, "label": str},
        outputs={"square": int, "note": str},
        preset=ScriptPreset.of(dependencies="none"),
        **keywords,
    )


def serialized(entity):
    """The workflow's ArrayNode (wire form) and the sub-task's registered template."""

    @workflow
    def wf(customers: list[str], amounts: list[float]) -> list[typing.Optional[SD]]:
        return entity(customer=customers, min_amount=amounts)

    entities = OrderedDict()
    spec = get_serializable(entities, SETTINGS, wf)
    (node,) = spec.template.nodes
    return node.array_node.to_flyte_idl(), entities[entity].template


def test_a_map_over_an_sql_task_is_an_array_node_running_our_executor_in_our_image():
    query = sql(secret_requests=[Secret(group="db", key="password")], requests={"cpu": "1"}, retries=2)
    mapped = map_task(query, concurrency=2, min_success_ratio=0.5)
    assert isinstance(mapped, ArrayNodeMapTask)
    array, tt = serialized(mapped)
    assert array.parallelism == 2
    assert array.WhichOneof("success_criteria") == "min_success_ratio" and array.min_success_ratio == 0.5
    assert array.node.task_node.reference_id.name == tt.id.name == mapped.name
    assert array.node.metadata.retries.retries == 2  # the sub-node is retried as the task is
    # the task's own template, but a list interface (flytepropeller's compiler expects it) ...
    plain = get_serializable(OrderedDict(), SETTINGS, query).template
    assert (tt.type, tt.task_type_version, tt.custom) == (plain.type, plain.task_type_version, plain.custom)
    assert tt.container.image == plain.container.image == default_image("sql")
    assert tt.container.resources == plain.container.resources and tt.metadata.retries.retries == 2
    assert [s.key for s in tt.security_context.secrets] == ["password"]
    assert tt.interface.inputs["customer"].type == TypeEngine.to_literal_type(list[str])
    # ... and, as some elements may fail, a list of optionals out
    assert tt.interface.outputs["results"].type == TypeEngine.to_literal_type(list[typing.Optional[SD]])
    # ... run by pyflyte-map-execute, whose resolver picks element i and hands the template to our executor
    args = tt.container.args
    assert args[0] == "pyflyte-map-execute" and args[args.index("--resolver") + 1] == MapTemplateResolver().name()
    assert args[args.index("--") + 1 :] == [
        "vars",
        "",
        "resolver",
        "flytekit.core.python_customized_container_task.default_task_template_resolver",
        "{{.taskTemplatePath}}",
        "flytekitplugins.prebuilt.executors.sql.SQLExecutor",
    ]
    assert "{{.checkpointOutputPrefix}}" in args and "{{.input}}" in args


def test_every_element_must_succeed_by_default_and_concurrency_is_then_the_clusters():
    array, tt = serialized(map_task(sql()))
    assert not array.HasField("parallelism") or array.parallelism == 0  # unset: the backend's default
    assert array.min_success_ratio == 1.0
    assert tt.interface.outputs["results"].type == TypeEngine.to_literal_type(list[SD])  # no None in it


def test_min_successes_is_the_criterion_sent_and_makes_outputs_optional():
    array, tt = serialized(map_task(sql(), min_successes=2))
    assert array.WhichOneof("success_criteria") == "min_successes" and array.min_successes == 2
    assert tt.interface.outputs["results"].type == TypeEngine.to_literal_type(list[typing.Optional[SD]])


def test_a_partials_inputs_are_bound_whole_to_every_element():
    mapped = map_task(functools.partial(sql(), min_amount=10.0))

    @workflow
    def wf(customers: list[str]) -> list[SD]:
        return mapped(customer=customers)

    entities = OrderedDict()
    (node,) = get_serializable(entities, SETTINGS, wf).template.nodes
    array, tt = node.array_node.to_flyte_idl(), entities[mapped].template
    assert list(array.bound_inputs) == ["min_amount"]
    assert tt.interface.inputs["min_amount"].type == TypeEngine.to_literal_type(float)  # not a list
    assert {b.var for b in node.inputs} == {"customer", "min_amount"}
    assert tt.container.args[tt.container.args.index("vars") + 1] == "min_amount"


def test_a_partials_inputs_count_as_given_to_the_command_line():
    from flytekitplugins.prebuilt.command_line import task_inputs

    mapped = map_task(functools.partial(sql(), min_amount=10.0))
    assert mapped.bound_input_values == {"min_amount": 10.0}
    assert task_inputs(mapped, ['customer=["a", "b"]']) == {"customer": ["a", "b"]}


def test_a_script_fans_out_with_one_list_per_output():
    mapped = map_task(functools.partial(script(), label="x"), min_success_ratio=0.5)
    interface = mapped.python_interface
    assert interface.inputs == {"n": typing.List[int], "label": str}
    assert interface.outputs == {"square": typing.List[typing.Optional[int]], "note": typing.List[typing.Optional[str]]}
    tt = get_serializable(OrderedDict(), SETTINGS, mapped).template
    assert tt.type == "prebuilt-script" and tt.container.image == default_image("script")
    assert tt.container.args[-1] == "flytekitplugins.prebuilt.executors.script.ScriptExecutor"


def test_a_pod_templates_primary_container_runs_the_map_command():
    pod = PodTemplate(primary_container_name="main", pod_spec=V1PodSpec(containers=[V1Container(name="main")]))
    tt = get_serializable(OrderedDict(), SETTINGS, map_task(sql(pod_template=pod))).template
    assert tt.container is None and tt.config == {"primary_container_name": "main"}
    (main,) = tt.k8s_pod.pod_spec["containers"]
    assert main["args"][0] == "pyflyte-map-execute" and main["image"] == default_image("sql")


def test_anything_else_goes_to_flytekits_map_task():
    @task
    def double(x: int) -> int:
        return 2 * x

    mapped = map_task(double, concurrency=3)
    assert isinstance(mapped, ArrayNodeMapTask) and not isinstance(mapped, PrebuiltMapTask)


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: map_task(sql(), concurrency=-1), "concurrency"),
        (lambda: map_task(sql(), concurrency=1.5), "concurrency"),
        (lambda: map_task(sql(), min_success_ratio=1.5), "min_success_ratio"),
        (lambda: map_task(sql(), min_successes=0), "min_successes"),
        (lambda: map_task(functools.partial(sql(), nope=1)), "target"),
        (lambda: map_task(functools.partial(sql(), "a")), "target"),
        (lambda: map_task(functools.partial(sql(), customer="a", min_amount=1.0)), "target"),
        (lambda: map_task(TrainTask("t", source=str(GOLDEN / "train_src"), command=["train.py"], nodes=2)), "target"),
        (lambda: PrebuiltMapTask(lambda x: x), "target"),
    ],
    ids=["negative", "fraction", "ratio", "zero", "unknown", "positional", "all-bound", "pytorchjob", "function"],
)
def test_bad_arguments_are_refused_naming_them(make, field):
    with pytest.raises(ConfigError) as error:
        make()
    assert error.value.field == field


def _literal(value, python_type):
    from flytekit.core.context_manager import FlyteContextManager

    ctx = FlyteContextManager.current_context()
    return TypeEngine.to_literal(ctx, value, python_type, TypeEngine.to_literal_type(python_type))


def test_element_i_is_item_i_of_each_list_not_bound_with_element_types():
    mapped = map_task(functools.partial(script(), label="x"), min_success_ratio=0.5)
    registered = get_serializable(OrderedDict(), SETTINGS, mapped).template
    tt = array_task_template(registered)  # what the pod reads: list outputs as their element type (arrayTaskReader)
    assert registered.interface.outputs["square"].type.collection_type is not None
    inputs = literals.LiteralMap({"n": _literal([3, 4, 5], list[int]), "label": _literal("x", str)})
    sub, picked = element(tt, inputs, 1, {"label"})
    assert picked.literals["n"].scalar.primitive.integer == 4
    assert picked.literals["label"].scalar.primitive.string_value == "x"
    assert sub.interface.inputs["n"].type == TypeEngine.to_literal_type(int)
    square = sub.interface.outputs["square"].type  # Optional[int] written as int, as flytekit's own map tasks do
    assert square.union_type is None and square.simple == TypeEngine.to_literal_type(int).simple
    assert tt.interface.inputs["n"].type == TypeEngine.to_literal_type(list[int])  # the original is untouched
    with pytest.raises(IndexError, match="index 3 out of bounds for input 'n' of 3 items"):
        element(tt, inputs, 3, {"label"})


def test_the_ratio_needed_is_rounded_up_as_the_backend_does():
    from flytekitplugins.prebuilt.map.task import required_successes

    assert required_successes(3, None, 0.5) == 2
    assert required_successes(3, None, None) == 3
    assert required_successes(3, 1, 0.9) == 1
    assert workflow_pb2.ArrayNode.FULL_STATE == map_task(sql()).execution_mode
