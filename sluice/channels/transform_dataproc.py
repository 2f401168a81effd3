"""Batch transform's ``DataProcessing``: input filter, join with the input, output filter, and assembly.

What happens to one request (DevGuide ``batch-transform-data-processing.md``; sluice's choices marked):

1. **Input filter.** Each input row is decoded, filtered with ``InputFilter`` and encoded again in the
   same format before it is sent. A CSV row is a JSON array of its fields (strings), so only index
   paths apply to CSV. *Rows* are lines for CSV and JSON Lines (a ``SplitType=None`` object holds many)
   and whole records for JSON.
2. **Join** (``JoinSource=Input``). The response is split into one row per input row — lines for CSV
   and JSON Lines; for JSON one document per record, or, when a ``MultiRecord`` request carried several
   records, either one document per line or a JSON array with one element per record (sluice's choice).
   A count that does not match fails the object. CSV: the *original* input fields, then the output
   fields. JSON: the output is added to the original input object as ``SageMakerOutput``; an input that
   is not an object becomes ``{"SageMakerInput": ..., "SageMakerOutput": ...}``.
3. **Output filter.** ``OutputFilter`` selects from each (joined) output row.
4. **Assembly.** Rows of one response are separated by newlines. ``AssembleWith=Line`` ends every
   response with a newline (one is added only if the response does not already end with one, so a model
   that writes ``"1\\n2\\n"`` gets no blank lines); ``None`` concatenates responses as they came.

Filters and join need a text format the service supports — CSV (``text/csv``), JSON
(``application/json``) or JSON Lines (``application/jsonlines``) — and records that are text (SplitType
``None`` or ``Line``). With ``JoinSource=Input``, ``ContentType`` must equal ``Accept`` and ``SplitType``
must equal ``AssembleWith``, as the service requires. :func:`data_processing_problems` lists every
violation at once for the job spec, before anything starts.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sluice.channels.transform_jsonpath import FilterError, JsonPath, parse_filter
from sluice.channels.transform_records import BatchStrategy, Record, SplitType

__all__ = [
    "DataFormat",
    "DataProcessing",
    "ProcessingError",
    "data_format",
    "data_processing_problems",
]


class ProcessingError(ValueError):
    """A record could not be filtered, joined or assembled; it fails its object."""


class DataFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    JSONLINES = "jsonlines"
    OTHER = "other"

    @property
    def line_rows(self) -> bool:
        """Whether each line is a row (CSV, JSON Lines) rather than each record (JSON)."""
        return self in (DataFormat.CSV, DataFormat.JSONLINES)


_FORMATS = {
    "text/csv": DataFormat.CSV,
    "application/csv": DataFormat.CSV,
    "application/json": DataFormat.JSON,
    "application/jsonlines": DataFormat.JSONLINES,
    "application/x-jsonlines": DataFormat.JSONLINES,
    "application/jsonl": DataFormat.JSONLINES,
    "application/json-lines": DataFormat.JSONLINES,
}


def data_format(content_type: str | None) -> DataFormat:
    """The format a MIME type names (parameters such as ``; charset=utf-8`` ignored)."""
    if not content_type:
        return DataFormat.OTHER
    return _FORMATS.get(content_type.split(";", 1)[0].strip().lower(), DataFormat.OTHER)


def data_processing_problems(
    *, input_filter: str | None, output_filter: str | None, join_source: str | None, content_type: str | None,
    accept: str | None, split: SplitType, assemble_with: str | None,
) -> list[str]:
    """Every reason the ``DataProcessing`` settings cannot work, worded for the request's fields."""
    problems: list[str] = []
    parsed: dict[str, JsonPath] = {}
    for field, text in (("DataProcessing.InputFilter", input_filter), ("DataProcessing.OutputFilter", output_filter)):
        if text is None:
            continue
        try:
            parsed[field] = parse_filter(text, field)
        except FilterError as exc:
            problems.append(str(exc))
    in_filter = parsed.get("DataProcessing.InputFilter")
    out_filter = parsed.get("DataProcessing.OutputFilter")
    joining = join_source == "Input"
    in_fmt, out_fmt = data_format(content_type), data_format(accept)
    if in_filter is not None and not in_filter.is_identity:
        if in_fmt is DataFormat.OTHER:
            problems.append(
                f"DataProcessing.InputFilter {input_filter!r} needs TransformInput.ContentType to be CSV (text/csv) "
                f"or JSON (application/json, application/jsonlines), not {content_type!r}: filters only work on those."
            )
        elif in_fmt is DataFormat.CSV and in_filter.uses_names:
            problems.append(
                f"DataProcessing.InputFilter {input_filter!r} selects members by name, but CSV rows are arrays of "
                "columns: use index paths such as '$[1:]' or '$[0,2]'."
            )
    if joining or (out_filter is not None and not out_filter.is_identity):
        what = "JoinSource=Input" if joining else f"DataProcessing.OutputFilter {output_filter!r}"
        if out_fmt is DataFormat.OTHER:
            problems.append(
                f"{what} needs TransformOutput.Accept to be CSV (text/csv) or JSON (application/json, "
                f"application/jsonlines), not {accept!r}: set accept= on the Transformer."
            )
    if out_filter is not None and out_fmt is DataFormat.CSV and out_filter.uses_names:
        problems.append(
            f"DataProcessing.OutputFilter {output_filter!r} selects members by name, but CSV output rows are arrays: "
            "use index paths such as '$[0,-1]'."
        )
    if joining:
        if (content_type or None) != (accept or None):
            problems.append(
                f"JoinSource=Input needs TransformInput.ContentType and TransformOutput.Accept to be equal; they are "
                f"{content_type!r} and {accept!r}. Set content_type and accept to the same type."
            )
        if split.value != (assemble_with or "None"):
            problems.append(
                f"JoinSource=Input needs TransformInput.SplitType and TransformOutput.AssembleWith to be equal; they "
                f"are {split.value!r} and {assemble_with or 'None'!r}. Use split_type='Line' with assemble_with='Line'."
            )
    active = joining or any(f is not None and not f.is_identity for f in (in_filter, out_filter))
    if active and split in (SplitType.RECORDIO, SplitType.TFRECORD):
        problems.append(
            f"input/output filters and join work on CSV and JSON text records; SplitType {split.value!r} splits "
            "binary records. Use SplitType 'Line' or 'None', or drop the filters."
        )
    return problems


# ---- rows ----------------------------------------------------------------------------------------
def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProcessingError(f"{what} is not UTF-8 text (byte {exc.start}); filters and join need CSV or JSON text.") \
            from None


def _csv_row(line: str) -> list[str]:
    rows = list(csv.reader([line]))
    return rows[0] if rows else []


def _csv_line(row: Any) -> str:
    values = row if isinstance(row, list) else [row]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(["" if v is None else _csv_value(v) for v in values])
    return buf.getvalue()


def _csv_value(v: Any) -> Any:
    if isinstance(v, dict | list):
        return json.dumps(v, separators=(",", ":"))
    if isinstance(v, bool):
        return "true" if v else "false"
    return v


def _json_value(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProcessingError(f"{what} is not valid JSON ({exc.msg} at column {exc.colno}): {text[:80]!r}") from None


def _output_value(text: str) -> Any:
    """A model's output row as JSON when it is JSON, else the text itself (for ``SageMakerOutput``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class _Request:
    """One request ready to send: its body, and the input rows a join needs."""

    body: bytes
    rows: int
    originals: tuple[Any, ...] = ()


@dataclass(frozen=True)
class DataProcessing:
    """The settings of one job, applied request by request (see the module docstring)."""

    input_filter: JsonPath | None = None
    output_filter: JsonPath | None = None
    join_input: bool = False
    input_format: DataFormat = DataFormat.OTHER
    output_format: DataFormat = DataFormat.OTHER
    assemble_line: bool = False
    strategy: BatchStrategy = BatchStrategy.MULTI_RECORD

    @classmethod
    def build(
        cls, *, input_filter: str | None = None, output_filter: str | None = None, join_source: str | None = None,
        content_type: str | None = None, accept: str | None = None, assemble_with: str | None = None,
        strategy: BatchStrategy = BatchStrategy.MULTI_RECORD,
    ) -> DataProcessing:
        """Settings already checked by :func:`data_processing_problems`; identity filters are dropped."""
        inf = parse_filter(input_filter, "InputFilter") if input_filter else None
        outf = parse_filter(output_filter, "OutputFilter") if output_filter else None
        return cls(
            input_filter=None if inf is None or inf.is_identity else inf,
            output_filter=None if outf is None or outf.is_identity else outf,
            join_input=join_source == "Input",
            input_format=data_format(content_type),
            output_format=data_format(accept),
            assemble_line=assemble_with == "Line",
            strategy=strategy,
        )

    @property
    def touches_input(self) -> bool:
        return self.input_filter is not None or self.join_input

    @property
    def touches_output(self) -> bool:
        return self.output_filter is not None or self.join_input

    # ---- requests ----------------------------------------------------------------------------
    def prepare(self, record: Record) -> Record:
        """``record`` as it will be sent: input-filtered, its decoded rows kept when joining.

        Batching measures prepared records, so ``MaxPayloadInMB`` applies to the bytes actually sent.
        """
        if not self.touches_input:
            return record
        text = _text(record.payload, "an input record")
        rows = self._input_rows(text)
        payload = record.payload
        if self.input_filter is not None:
            encoded = [self._encode_input(self._filter(self.input_filter, row, "InputFilter")) for row in rows]
            payload = ("\n".join(encoded) + ("\n" if text.endswith("\n") else "")).encode("utf-8")
        return Record(payload, None, tuple(rows) if self.join_input else None)

    def request(self, records: Sequence[Record]) -> _Request:
        """One request's body for prepared ``records``, plus the input rows a join pairs the response with."""
        if self.strategy is BatchStrategy.SINGLE_RECORD and len(records) == 1:
            body = records[0].payload
        else:
            body = b"".join(r.packed for r in records)
        if not self.join_input:
            return _Request(body, len(records))
        originals = tuple(row for r in records for row in (r.rows or ()))
        return _Request(body, len(originals), originals)

    def lines_request(self, body: bytes) -> _Request:
        """A request of whole lines cut by :func:`~sluice.channels.transform_records.line_batches` (no input
        filter or join apply, so the body goes as it is)."""
        return _Request(body, body.count(b"\n") + (0 if body.endswith(b"\n") else 1))

    def _input_rows(self, text: str) -> list[Any]:
        fmt = self.input_format
        if fmt is DataFormat.CSV:
            return [_csv_row(line) for line in text.splitlines() if line.strip()]
        if fmt is DataFormat.JSONLINES:
            return [_json_value(line, "an input line") for line in text.splitlines() if line.strip()]
        if fmt is DataFormat.JSON:
            return [_json_value(text, "an input record")]
        return [text]

    def _encode_input(self, row: Any) -> str:
        return _csv_line(row) if self.input_format is DataFormat.CSV else _dump(row)

    @staticmethod
    def _filter(path: JsonPath, row: Any, which: str) -> Any:
        try:
            return path.apply(row)
        except FilterError as exc:
            raise ProcessingError(f"{which}: {exc} Record: {_dump(row)[:120]}") from None

    # ---- responses ---------------------------------------------------------------------------
    def output(self, request: _Request, response: bytes) -> bytes:
        """The bytes to append to the object's output for one request's ``response``."""
        if not self.touches_output:
            if self.assemble_line and not response.endswith(b"\n"):
                return response + b"\n"
            return response
        text = _text(response, "the model's response")
        rows = self._output_rows(text, request.rows)
        if self.join_input:
            if len(rows) != request.rows:
                raise ProcessingError(
                    f"JoinSource=Input pairs each input record with one output record, but a request of "
                    f"{request.rows} record(s) got {len(rows)} back. The model must return one line (CSV, JSON Lines) "
                    "or one document (JSON) per record."
                )
            rows = [self._join(orig, out) for orig, out in zip(request.originals, rows, strict=True)]
        if self.output_filter is not None:
            rows = [self._filter(self.output_filter, row, "OutputFilter") for row in rows]
        encoded = [_csv_line(r) if self.output_format is DataFormat.CSV else _dump(r) for r in rows]
        body = "\n".join(encoded)
        if self.assemble_line and encoded:
            body += "\n"
        return body.encode("utf-8")

    def _output_rows(self, text: str, expected: int) -> list[Any]:
        fmt = self.output_format
        if fmt is DataFormat.CSV:
            return [_csv_row(line) for line in text.splitlines() if line.strip()]
        if fmt is DataFormat.JSONLINES:
            return [_output_value(line) for line in text.splitlines() if line.strip()]
        lines = [line for line in text.splitlines() if line.strip()]
        if expected > 1 and len(lines) == expected:
            return [_output_value(line) for line in lines]
        value = _output_value(text)
        if expected > 1 and isinstance(value, list) and len(value) == expected:
            return value
        return [value]

    def _join(self, original: Any, output: Any) -> Any:
        if self.output_format is DataFormat.CSV:
            orig = original if isinstance(original, list) else [original]
            out = output if isinstance(output, list) else [output]
            return [*orig, *out]
        if isinstance(original, dict):
            return {**original, "SageMakerOutput": output}
        return {"SageMakerInput": original, "SageMakerOutput": output}
