"""Augmented manifests (``S3DataType=AugmentedManifestFile``): JSON Lines whose attributes become records.

The manifest is one JSON object per line. ``AttributeNames`` (1 to 16) picks attributes and fixes
their order; any other attribute is ignored wherever it sits on the line. One line is one unit for
sharding and shuffling (SageMaker leaves that undocumented; one line ≈ one object is the natural
reading), and each selected attribute is one record of it:

* an attribute whose name ends in ``-ref`` holds an ``s3://`` URI, and its record is that object's bytes;
* any other attribute's record is its text: a JSON string as the string itself, other scalars as
  their JSON text (``1``, ``0.5``, ``true``, ``null``; floats in shortest round-trip form, so ``1.50``
  streams as ``1.5``), objects and arrays as compact JSON (``{"a":1}``), all UTF-8.

Everything is checked while planning, before any instance starts: each non-blank line must be a JSON
object holding every requested attribute, and every ``-ref`` must name an existing object (stat'ed
once per distinct object, on parallel threads when the store is remote). Blank lines are skipped;
line numbers in errors count every physical line from 1.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sluice.channels.spec import ChannelSpec
from sluice.channels.units import InlineRecord, ManifestLine, ObjectRef
from sluice.errors import NoSuchKeyError, SluiceError, SpecError
from sluice.storage.base import ObjectInfo, ObjectStore
from sluice.storage.uri import S3Uri

__all__ = ["MAX_ATTRIBUTE_NAMES", "attribute_bytes", "resolve_augmented_manifest", "validate_attribute_names"]

MAX_ATTRIBUTE_NAMES = 16
_REMOTE_STAT_WORKERS = 16


def validate_attribute_names(names: tuple[str, ...] | list[str], channel: str) -> tuple[str, ...]:
    """Return ``names`` if they are 1 to 16 names of 1 to 256 characters each, else raise :class:`SpecError`."""
    names = tuple(names)
    if not 1 <= len(names) <= MAX_ATTRIBUTE_NAMES:
        raise SpecError(
            f"channel {channel!r}: an AugmentedManifestFile channel needs AttributeNames listing 1 to "
            f"{MAX_ATTRIBUTE_NAMES} attributes, in the order the records should stream (got {len(names)}); "
            "e.g. AttributeNames=['source-ref', 'class']."
        )
    for name in names:
        if not isinstance(name, str) or not 1 <= len(name) <= 256:
            raise SpecError(
                f"channel {channel!r}: attribute name {name!r} must be a string of 1 to 256 characters."
            )
    return names


def attribute_bytes(value: Any) -> bytes:
    """The record for a non-``-ref`` attribute value (see the module docstring for the encoding)."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return json.dumps(value).encode("utf-8")


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {list: "array", str: "string", int: "number", float: "number"}.get(type(value), "null")


def _parse_ref(value: Any, where: str, attribute: str) -> S3Uri:
    if not isinstance(value, str):
        raise SpecError(
            f"{where}: attribute {attribute!r} ends in '-ref', so it must hold an s3:// URI string, not {value!r}."
        )
    try:
        uri = S3Uri.parse(value)
    except SluiceError as exc:
        raise SpecError(f"{where}: attribute {attribute!r} holds {value!r}, which is not a valid object URI: {exc}") \
            from None
    if not uri.key or uri.key.endswith("/"):
        raise SpecError(
            f"{where}: attribute {attribute!r} holds {value!r}, which names a prefix, not an object; "
            "a '-ref' attribute must name one object, e.g. s3://bucket/images/0001.jpg."
        )
    return uri


def resolve_augmented_manifest(spec: ChannelSpec, store: ObjectStore) -> list[ManifestLine]:
    """The manifest's lines as units, in file order. Raises :class:`SpecError` on any problem (see above)."""
    names = validate_attribute_names(spec.attribute_names, spec.name)
    manifest = S3Uri.parse(spec.s3_uri)
    try:
        raw = store.get_bytes(manifest.bucket, manifest.key)
    except NoSuchKeyError:
        raise SpecError(f"channel {spec.name!r}: augmented manifest {spec.s3_uri} does not exist.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"channel {spec.name!r}: augmented manifest {spec.s3_uri} is not UTF-8 text (byte {exc.start})."
        ) from None

    # Pass 1: parse every line, keep each record as text or as a reference still to be stat'ed.
    parsed: list[tuple[int, list[bytes | tuple[str, str]]]] = []
    first_use: dict[tuple[str, str], tuple[int, str]] = {}  # (bucket, key) -> (line, URI as written)
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"channel {spec.name!r}: augmented manifest {spec.s3_uri} line {line_no}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SpecError(
                f"{where} is not valid JSON ({exc.msg} at column {exc.colno}). Each line must be one JSON object, "
                'e.g. {"source-ref": "s3://bucket/img/1.jpg", "class": "0"}.'
            ) from None
        if not isinstance(obj, dict):
            raise SpecError(f"{where} is a JSON {_json_kind(obj)}, not an object; each line must be one JSON object.")
        records: list[bytes | tuple[str, str]] = []
        for name in names:
            if name not in obj:
                present = ", ".join(repr(k) for k in list(obj)[:8]) or "none"
                raise SpecError(
                    f"{where} has no attribute {name!r} (it has {present}). Every line must hold every attribute in "
                    "AttributeNames; fix the line or the AttributeNames."
                )
            value = obj[name]
            if name.endswith("-ref"):
                uri = _parse_ref(value, where, name)
                ref = (uri.bucket, uri.key)
                first_use.setdefault(ref, (line_no, value))
                records.append(ref)
            else:
                records.append(attribute_bytes(value))
        parsed.append((line_no, records))
    if not parsed:
        raise SpecError(
            f"channel {spec.name!r}: augmented manifest {spec.s3_uri} has no lines; add one JSON object per line."
        )

    # Pass 2: stat every distinct referenced object, then report the earliest line naming a missing one.
    infos = _stat_all(store, list(first_use))
    missing = sorted(first_use[ref] for ref, info in infos.items() if info is None)
    if missing:
        line_no, uri = missing[0]
        more = f" ({len(missing) - 1} more referenced object(s) are missing too)" if len(missing) > 1 else ""
        raise SpecError(
            f"channel {spec.name!r}: augmented manifest {spec.s3_uri} line {line_no} references {uri}, which does "
            f"not exist{more}. Upload the object or fix the manifest."
        )
    refs = {ref: ObjectRef(ref[0], ref[1], info.size, ref[1]) for ref, info in infos.items() if info is not None}
    return [
        ManifestLine(line_no, tuple(InlineRecord(r) if isinstance(r, bytes) else refs[r] for r in records))
        for line_no, records in parsed
    ]


def _stat_all(store: ObjectStore, refs: list[tuple[str, str]]) -> dict[tuple[str, str], ObjectInfo | None]:
    """Each object's info, or ``None`` if it does not exist; threads only pay off for a remote store."""

    def one(ref: tuple[str, str]) -> ObjectInfo | None:
        try:
            return store.stat(*ref)
        except NoSuchKeyError:
            return None

    if not refs:
        return {}
    local = any(store.local_path(*ref) is not None for ref in refs[:4])  # a missing first object proves nothing
    if local or len(refs) == 1:
        return {ref: one(ref) for ref in refs}
    with ThreadPoolExecutor(max_workers=min(_REMOTE_STAT_WORKERS, len(refs))) as pool:
        return dict(zip(refs, pool.map(one, refs), strict=True))
