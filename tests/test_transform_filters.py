"""Batch transform's DataProcessing: the JSONPath subset, join for CSV and JSON Lines, and assembly."""

from __future__ import annotations

import pytest

from sluice.channels.transform_dataproc import (
    DataFormat,
    DataProcessing,
    ProcessingError,
    data_format,
    data_processing_problems,
)
from sluice.channels.transform_jsonpath import FilterError, parse_filter
from sluice.channels.transform_records import BatchStrategy, Record, SplitType

ROW = ["id7", "1.5", "2.5", "3.5", "4.5", "5.5"]
DOC = {"id": 7, "features": [1, 2, 3], "meta": {"a": 1, "b": 2}}


def select(path: str, value):
    return parse_filter(path).apply(value)


# ---- each operator ------------------------------------------------------------------------------------
def test_dollar_is_the_whole_record():
    assert parse_filter("$").is_identity
    assert select("$", DOC) == DOC


def test_dot_name_selects_a_member():
    assert select("$.features", DOC) == [1, 2, 3]
    assert select("$.meta.b", DOC) == 2


def test_wildcard_selects_every_member_or_element():
    assert select("$.meta.*", DOC) == [1, 2]
    assert select("$[*]", ROW) == ROW
    assert select("$.*", {"x": 1}) == [1]


def test_bracketed_names_keep_just_those_members_in_order():
    assert select("$['meta','id']", DOC) == {"meta": {"a": 1, "b": 2}, "id": 7}
    assert select('$["id"]', DOC) == 7  # one name is the value itself, as $.id


def test_index_lists_accept_negative_indices():
    assert select("$[0,-1]", ROW) == ["id7", "5.5"]
    assert select("$[2]", ROW) == "2.5"
    assert select("$[-2]", ROW) == "4.5"


def test_slices_follow_python_semantics():
    assert select("$[1:]", ROW) == ROW[1:]
    assert select("$[1:4]", ROW) == ["1.5", "2.5", "3.5"]  # end excluded: the DevGuide's "inclusive" is not followed
    assert select("$[:2]", ROW) == ROW[:2]
    assert select("$[-2:]", ROW) == ROW[-2:]


def test_a_step_after_a_list_applies_to_each_element():
    assert select("$[*].score", [{"score": 1}, {"score": 2}]) == [1, 2]
    assert select("$.features[1:]", DOC) == [2, 3]


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("$..features", "recursive descent"),
        ("$[?(@.a > 1)]", "filter and script expressions"),
        ("$[(@.length-1)]", "filter and script expressions"),
        ("$[::2]", "slice steps"),
        ("$[0:4:2]", "slice steps"),
        ("features", "must start with '\\$'"),
        ("$.length()", "unexpected"),
        ("$[a]", "neither indices"),
        ("$[0", "never closed"),
        ("$.", "expected a member name"),
    ],
)
def test_expressions_outside_the_subset_are_refused_with_the_operator_list(path, why):
    with pytest.raises(FilterError, match=why) as err:
        parse_filter(path, "InputFilter")
    assert "Supported operators" in str(err.value) or "characters" in str(err.value)


def test_filters_longer_than_the_api_limit_are_refused():
    with pytest.raises(FilterError, match="at most 63"):
        parse_filter("$." + "a" * 70)


def test_a_missing_member_or_index_is_an_error_for_that_record():
    with pytest.raises(FilterError, match="no member 'nope'"):
        select("$.nope", DOC)
    with pytest.raises(FilterError, match="index 9 is out of range"):
        select("$[9]", ROW)
    with pytest.raises(FilterError, match="needs an object"):
        select("$.a", ROW)


# ---- formats and the service's rules --------------------------------------------------------------------
def test_data_format_ignores_parameters_and_case():
    assert data_format("text/csv; charset=utf-8") is DataFormat.CSV
    assert data_format("application/JSONLINES") is DataFormat.JSONLINES
    assert data_format("application/x-recordio-protobuf") is DataFormat.OTHER
    assert data_format(None) is DataFormat.OTHER


def problems(**kw) -> list[str]:
    base = dict(input_filter=None, output_filter=None, join_source=None, content_type="text/csv",
                accept="text/csv", split=SplitType.LINE, assemble_with="Line")
    return data_processing_problems(**{**base, **kw})


def test_the_issue_example_is_valid():
    assert problems(input_filter="$[1:]", join_source="Input", output_filter="$[0,-1]") == []


def test_join_needs_content_type_equal_to_accept_and_split_equal_to_assemble():
    found = problems(join_source="Input", accept="application/json", assemble_with="None")
    assert any("ContentType and TransformOutput.Accept to be equal" in p for p in found)
    assert any("SplitType and TransformOutput.AssembleWith to be equal" in p for p in found)


def test_name_paths_are_refused_for_csv_and_filters_for_other_formats():
    assert any("CSV rows are arrays" in p for p in problems(input_filter="$.features"))
    assert any("CSV output rows are arrays" in p for p in problems(output_filter="$.label"))
    found = problems(input_filter="$[1:]", content_type="application/x-image")
    assert any("needs TransformInput.ContentType to be CSV" in p for p in found)


def test_filters_on_binary_splits_are_refused():
    assert any("binary records" in p for p in problems(input_filter="$[1:]", split=SplitType.RECORDIO))


def test_every_problem_is_reported_at_once():
    found = problems(input_filter="$..a", output_filter="$[?(@)]", join_source="Input", accept="application/json")
    assert len(found) >= 3


# ---- a request and its response ------------------------------------------------------------------------
def processing(**kw) -> DataProcessing:
    return DataProcessing.build(**kw)


def run(dp: DataProcessing, lines: list[bytes], response: bytes) -> tuple[bytes, bytes]:
    prepared = [dp.prepare(Record(line)) for line in lines]
    request = dp.request(prepared)
    return request.body, dp.output(request, response)


def test_csv_input_filter_join_and_output_filter_as_in_the_issue():
    dp = processing(input_filter="$[1:]", output_filter="$[0,-1]", join_source="Input", content_type="text/csv",
                    accept="text/csv", assemble_with="Line")
    body, out = run(dp, [b"id1,1,2\n", b"id2,3,4\n"], b"0.1\n0.9\n")
    assert body == b"1,2\n3,4\n"  # the id column never reaches the model
    assert out == b"id1,0.1\nid2,0.9\n"  # input columns, then output columns; then the filter keeps first and last


def test_csv_join_without_output_filter_appends_output_columns_to_the_original_row():
    dp = processing(input_filter="$[1:]", join_source="Input", content_type="text/csv", accept="text/csv",
                    assemble_with="Line")
    _, out = run(dp, [b'a,"x,y",3\n'], b"0.5,0.5\n")
    assert out == b'a,"x,y",3,0.5,0.5\n'  # CSV quoting survives the round trip


def test_jsonlines_join_adds_sagemaker_output_to_the_input_object():
    dp = processing(input_filter="$.features", join_source="Input", content_type="application/jsonlines",
                    accept="application/jsonlines", assemble_with="Line")
    body, out = run(dp, [b'{"id": 1, "features": [1, 2]}\n'], b'{"label": 1}\n')
    assert body == b"[1,2]\n"
    assert out == b'{"id":1,"features":[1,2],"SageMakerOutput":{"label":1}}\n'
    with pytest.raises(ProcessingError, match="needs an object"):  # the input filter applies first
        run(dp, [b"[5, 6]\n"], b"0.3\n")


def test_jsonlines_join_wraps_a_non_object_input():
    dp = processing(join_source="Input", content_type="application/jsonlines", accept="application/jsonlines",
                    assemble_with="Line", output_filter="$['SageMakerInput','SageMakerOutput']")
    _, out = run(dp, [b"[5, 6]\n", b"7\n"], b"0.3\n0.4\n")
    assert out == b'{"SageMakerInput":[5,6],"SageMakerOutput":0.3}\n{"SageMakerInput":7,"SageMakerOutput":0.4}\n'


def test_json_output_filter_with_names_on_a_joined_record():
    dp = processing(join_source="Input", output_filter="$['id','SageMakerOutput']", content_type="application/json",
                    accept="application/json", assemble_with="Line")
    _, out = run(dp, [b'{"id": 3, "x": [0]}\n'], b'{"p": 0.2}')
    assert out == b'{"id":3,"SageMakerOutput":{"p":0.2}}\n'


def test_json_multi_record_response_may_be_an_array_with_one_element_per_record():
    dp = processing(join_source="Input", content_type="application/json", accept="application/json",
                    assemble_with="Line")
    _, out = run(dp, [b'{"id": 1}\n', b'{"id": 2}\n'], b"[10, 20]")
    assert out == b'{"id":1,"SageMakerOutput":10}\n{"id":2,"SageMakerOutput":20}\n'


def test_a_join_whose_output_count_does_not_match_fails():
    dp = processing(join_source="Input", content_type="text/csv", accept="text/csv", assemble_with="Line")
    with pytest.raises(ProcessingError, match="a request of 2 record\\(s\\) got 1 back"):
        run(dp, [b"1\n", b"2\n"], b"0.5\n")


def test_an_input_filter_that_does_not_apply_fails_with_the_record():
    dp = processing(input_filter="$[5]", content_type="text/csv")
    with pytest.raises(ProcessingError, match=r"index 5 is out of range.*Record"):
        dp.prepare(Record(b"1,2\n"))


def test_input_filter_on_a_whole_csv_object_filters_every_line():
    dp = processing(input_filter="$[1:]", content_type="text/csv", strategy=BatchStrategy.SINGLE_RECORD)
    assert dp.prepare(Record(b"a,1\nb,2")).payload == b"1\n2"


# ---- assembly ---------------------------------------------------------------------------------------------
def test_assemble_line_ends_each_response_with_one_newline():
    dp = processing(assemble_with="Line")
    request = dp.request([Record(b"1\n")])
    assert dp.output(request, b"0.5") == b"0.5\n"
    assert dp.output(request, b"0.5\n0.6\n") == b"0.5\n0.6\n"  # no blank line added


def test_assemble_none_concatenates_responses_as_they_are():
    dp = processing(assemble_with=None)
    request = dp.request([Record(b"\x00\x01")])
    assert dp.output(request, b"\x02") == b"\x02"


def test_single_record_request_sends_the_payload_and_multi_record_the_framed_bytes():
    framed = Record(b"abc", b"HEADabc\x00")
    assert processing(strategy=BatchStrategy.SINGLE_RECORD).request([framed]).body == b"abc"
    assert processing(strategy=BatchStrategy.MULTI_RECORD).request([framed, framed]).body == b"HEADabc\x00" * 2
