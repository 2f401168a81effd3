"""The parsed pipeline graph and its pure functions: dependencies, order, cycles, reach; expression paths.

Graphs here are built by hand (``{name: StepSpec}``) and results compared by dict equality, so each test
reads as the rule it pins down.
"""

from __future__ import annotations

import pytest

from sluice.errors import PipelineError
from sluice.workflow.expressions import (
    Attr,
    Index,
    format_path,
    iter_references,
    parse_path,
    parse_reference,
    resolve_path,
    step_references,
)
from sluice.workflow.graph import (
    StepSpec,
    StepType,
    dependencies,
    dependents,
    downstream,
    find_cycle,
    format_cycle,
    parse_duration,
    toposort,
    upstream,
)

T = StepType.TRAINING


def get(step: str, path: str = "ModelArtifacts.S3ModelArtifacts") -> dict[str, str]:
    return {"Get": f"Steps.{step}.{path}"}


def spec(name: str, *depends_on: str, arguments: dict | None = None, **kw) -> StepSpec:
    return StepSpec(name, kw.pop("type", T), arguments or {}, tuple(depends_on), **kw)


def graph(*specs: StepSpec) -> dict[str, StepSpec]:
    return {s.name: s for s in specs}


# ---- dependencies ------------------------------------------------------------------------------------------

def test_dependencies_combine_depends_on_property_references_and_condition_branches():
    g = graph(
        spec("prep"),
        spec("train", arguments={"InputDataConfig": [{"S3Uri": get("prep", "ProcessingOutputConfig.Outputs['a']")}]}),
        spec("check", type=StepType.CONDITION, arguments={"Conditions": [
            {"Type": "Equals", "LeftValue": get("train", "TrainingJobName"), "RightValue": "x"}]},
             if_steps=("model",), else_steps=("stop",)),
        spec("model", "prep", branch_of=("check", "IfSteps")),
        spec("stop", type=StepType.FAIL, branch_of=("check", "ElseSteps")),
    )
    assert dependencies(g) == {
        "prep": set(),
        "train": {"prep"},
        "check": {"train"},
        "model": {"check", "prep"},
        "stop": {"check"},
    }
    assert dependents(g) == {"prep": {"train", "model"}, "train": {"check"}, "check": {"model", "stop"},
                             "model": set(), "stop": set()}


def test_references_inside_join_and_jsonget_are_dependencies_too():
    args = {"X": {"Std:Join": {"On": "/", "Values": ["s3:/", get("a", "TrainingJobName")]}},
            "Y": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.b.PropertyFiles.Report"}, "Path": "m.v"}},
            "Z": [{"Get": "Parameters.P"}, {"Get": "Execution.PipelineExecutionId"}]}
    assert step_references(args) == {"a", "b"}
    assert sorted(iter_references(args)) == [
        ("Execution.PipelineExecutionId", False), ("Parameters.P", False), ("Steps.a.TrainingJobName", False),
        ("Steps.b.PropertyFiles.Report", True)]


# ---- order and cycles -------------------------------------------------------------------------------------

def test_toposort_puts_each_step_after_its_dependencies_and_prefers_the_earliest_defined_ready_step():
    g = graph(spec("d", "b", "c"), spec("c", "a"), spec("b", "a"), spec("a"), spec("e"))
    assert toposort(g) == ["a", "c", "b", "d", "e"]


def test_find_cycle_names_the_cycle_in_order():
    g = graph(spec("a", "c"), spec("b", "a"), spec("c", "b"), spec("d", "a"))
    assert find_cycle(g) == ["a", "c", "b", "a"]
    assert format_cycle(find_cycle(g)) == "a -> c -> b -> a"


def test_a_step_reading_its_own_properties_is_a_cycle_of_one():
    g = graph(spec("a", arguments={"X": get("a", "TrainingJobName")}))
    assert find_cycle(g) == ["a", "a"]


def test_no_cycle_is_none():
    assert find_cycle(graph(spec("a"), spec("b", "a"))) is None


def test_toposort_refuses_a_cycle_naming_it():
    g = graph(spec("a", "b"), spec("b", "a"))
    with pytest.raises(PipelineError, match=r"dependency cycle: a -> b -> a"):
        toposort(g)


def test_toposort_refuses_a_dependency_on_a_step_that_is_not_there():
    with pytest.raises(PipelineError, match=r"step 'b' depends on 'ghost', which is not a step"):
        toposort(graph(spec("a"), spec("b", "ghost")))


# ---- reach -------------------------------------------------------------------------------------------------

def test_downstream_and_upstream_follow_edges_transitively():
    g = graph(spec("a"), spec("b", "a"), spec("c", "b"), spec("d"), spec("e", "d", "c"))
    assert downstream(g, ["b"]) == {"c", "e"}
    assert downstream(g, ["a", "d"]) == {"b", "c", "e"}
    assert upstream(g, ["e"]) == {"a", "b", "c", "d"}
    assert downstream(g, ["e"]) == set()
    assert downstream(g, ["nope"]) == set()


def test_downstream_of_a_branch_is_what_a_false_condition_blocks():
    g = graph(
        spec("cond", type=StepType.CONDITION, if_steps=("m",), else_steps=("f",)),
        spec("m", branch_of=("cond", "IfSteps")),
        spec("t", arguments={"ModelName": get("m", "ModelName")}),
        spec("f", type=StepType.FAIL, branch_of=("cond", "ElseSteps")),
    )
    assert downstream(g, ["m"]) == {"t"}
    assert downstream(g, ["cond"]) == {"m", "t", "f"}


# ---- paths ---------------------------------------------------------------------------------------------------

def test_parse_path_reads_attributes_names_and_positions():
    assert parse_path("ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri") == (
        Attr("ProcessingOutputConfig"), Attr("Outputs"), Index("train"), Attr("S3Output"), Attr("S3Uri"))
    assert parse_path("FinalMetricDataList['val:acc'].Value") == (
        Attr("FinalMetricDataList"), Index("val:acc"), Attr("Value"))
    assert parse_path('TrainingJobSummaries[1]["TrainingJobName"]') == (
        Attr("TrainingJobSummaries"), Index(1), Index("TrainingJobName"))
    assert format_path(parse_path("A.B['c'][0].D")) == "A.B['c'][0].D"


def test_parse_path_refuses_what_it_cannot_read():
    with pytest.raises(PipelineError, match=r"cannot be read at"):
        parse_path("Outputs[train]")


def test_parse_reference_splits_namespace_name_and_path():
    ref = parse_reference("Steps.CreateModel-CreateModel.ModelName")
    assert (ref.namespace, ref.name, ref.path) == ("Steps", "CreateModel-CreateModel", (Attr("ModelName"),))
    assert parse_reference("Parameters.Mode").name == "Mode"
    assert parse_reference("Steps.Eval.PropertyFiles.Report").is_property_file
    with pytest.raises(PipelineError, match=r"not a reference sluice can read"):
        parse_reference("Nope.X")


def test_resolve_path_finds_list_elements_by_their_name_key():
    describe = {"ProcessingOutputConfig": {"Outputs": [
        {"OutputName": "train", "S3Output": {"S3Uri": "s3://b/train"}},
        {"OutputName": "test", "S3Output": {"S3Uri": "s3://b/test"}}]},
        "FinalMetricDataList": [{"MetricName": "val:acc", "Value": 0.9}]}
    assert resolve_path(describe, parse_path("ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri")) == "s3://b/test"
    assert resolve_path(describe, parse_path("ProcessingOutputConfig.Outputs[0].S3Output.S3Uri")) == "s3://b/train"
    assert resolve_path(describe, parse_path("FinalMetricDataList['val:acc'].Value")) == 0.9
    with pytest.raises(KeyError, match=r"no element named 'nope'"):
        resolve_path(describe, parse_path("ProcessingOutputConfig.Outputs['nope']"))


# ---- durations -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "hours"), [("P30D", 720), ("PT1H", 1), ("P4DT12H", 108), ("p30d", 720),
                                             ("30d", 720), ("T16m", 16 / 60), ("PT90S", 90 / 3600)])
def test_expire_after_is_read_leniently(text, hours):
    assert parse_duration(text).total_seconds() == pytest.approx(hours * 3600)


def test_expire_after_that_is_not_a_duration_is_refused():
    with pytest.raises(PipelineError, match=r"'thirty days' is not an ISO-8601 duration"):
        parse_duration("thirty days")
