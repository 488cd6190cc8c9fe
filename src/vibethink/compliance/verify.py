"""The offline verifier of a ledger export: needs only the export (and, ideally, trusted public keys).

It checks the manifest's file hashes and signature, every record's content hash, signature, sequence
and chain link, every checkpoint's signature and Merkle root, the consistency proofs between
checkpoints, and the reviewer notes; it names the first bad record. A record whose content a
retention pruning removed is a stub (sequence, chain link, entry hash, signature): its signature,
chain link and Merkle leaf are checked as any record's, and a signed pruning in `prunings.jsonl`
must cover it; the pruning's signature binds the entry hashes of exactly the rows it emptied.
Records are checked in chunks on every core (`workers`), then chunk boundaries and the Merkle
tree are checked in order.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import os
import zipfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from vibethink.compliance import merkle
from vibethink.compliance.canonical import canonical
from vibethink.compliance.keys import verify_signature

EXPORT_FORMAT = "vibethink-compliance-export/1"
GENESIS = "0" * 64
BLOCK = 1 << 22  # bytes of whole lines per task for a worker (about 18,000 records)
RECORDS = "evidence.jsonl"
MAX_PROBLEMS = 100
FILES = ("evidence.jsonl", "checkpoints.jsonl", "notes.jsonl", "keys.json")
PRUNINGS = "prunings.jsonl"  # in exports of ledgers that ever pruned (older exports lack it)
PRUNING_TYPE = "vibethink.compliance.pruning/v1"


@dataclass
class Problem:
    where: str  # "record 42", "checkpoint 1000", "manifest", "file evidence.jsonl"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Report:
    tenant_id: str | None = None
    records: int = 0
    signed_records: int = 0
    checkpoints: int = 0
    notes: int = 0
    tree_size: int = 0
    root_hash: str | None = None
    pruned_records: int = 0  # records whose content a retention pruning removed
    prunings: int = 0
    keys_trusted: bool = False
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    @property
    def first_bad_record(self) -> Problem | None:
        """The earliest record (by sequence) that fails a check."""
        records = [p for p in self.problems if p.where.startswith("record ")]
        return min(records, key=lambda p: int(p.where.split()[1]), default=None)

    def add(self, where: str, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(where, message))

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tenant_id": self.tenant_id,
            "records": self.records,
            "signed_records": self.signed_records,
            "checkpoints": self.checkpoints,
            "notes": self.notes,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "pruned_records": self.pruned_records,
            "prunings": self.prunings,
            "keys_trusted": self.keys_trusted,
            "first_problem": str(self.first_problem) if self.first_problem else None,
            "first_bad_record": str(self.first_bad_record) if self.first_bad_record else None,
            "problems": [str(p) for p in self.problems],
            "warnings": self.warnings,
        }


class Export:
    """An export as a folder or a .zip file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip = zipfile.ZipFile(path) if path.is_file() else None

    def exists(self, name: str) -> bool:
        if self._zip is not None:
            return name in self._zip.namelist()
        return (self.path / name).is_file()

    def open(self, name: str) -> BinaryIO:
        if self._zip is not None:
            return self._zip.open(name)  # type: ignore[return-value]
        return (self.path / name).open("rb")

    def sha256(self, name: str) -> str:
        digest = hashlib.sha256()
        with self.open(name) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


@dataclass
class ChunkResult:
    start_line: int
    first_seq: int | None
    first_prev: str | None
    last_seq: int | None
    last_hash: str | None
    leaves: bytes
    tenants: set[str]
    signed: int
    problems: list[tuple[str, str]]
    # (seq, the pruning it names, entry hash, was it signed) of each pruned stub, in order
    pruned: list[tuple[int, int | None, bytes, bool]] = field(default_factory=list)


_KEYS: dict[str, bytes] = {}
_RECORD_START = b'{"record":'
_RECORD_END = b',"entry_hash":"'


def _init_worker(keys: dict[str, bytes]) -> None:
    _KEYS.clear()
    _KEYS.update(keys)


def _read_line(line: bytes) -> tuple[dict[str, Any], bytes, str, Any, bool]:
    """(record, leaf hash, claimed entry hash, signature, is a pruned stub) of one line of evidence.jsonl.

    The exporter writes each record as its canonical bytes, `{"record":<RFC 8785 document>,
    "entry_hash":…,"signature":…}`: when those bytes hash to the claimed entry hash they are the
    signed document itself and nothing needs re-encoding. Anything else (another key order, spaces,
    a changed record) is parsed and canonicalised, and its own hash is what gets compared. A stub
    (`{"pruned": …}`) has no content left: its entry hash stands as stated, and its signature and
    the chain and tree around it still check it.
    """
    cut = line.rfind(_RECORD_END)
    if line.startswith(_RECORD_START) and cut > 0:
        raw = line[len(_RECORD_START) : cut]
        tail = orjson.loads(b"{" + line[cut + 1 :])
        entry_hash = tail["entry_hash"]
        leaf = merkle.leaf_hash(raw)
        if type(entry_hash) is str and leaf.hex() == entry_hash:
            record = orjson.loads(raw)
            if type(record) is dict:
                return record, leaf, entry_hash, tail.get("signature"), False
    item = orjson.loads(line)
    stub = item.get("pruned")
    if stub is not None:
        leaf = bytes.fromhex(item["entry_hash"])
        if len(leaf) != 32:
            raise ValueError("an entry hash is 32 bytes")
        return stub, leaf, item["entry_hash"], item.get("signature"), True
    record = item["record"]
    return record, merkle.leaf_hash(canonical(record)), item["entry_hash"], item.get("signature"), False


def check_chunk(start_line: int, lines: list[bytes] | bytes) -> ChunkResult:
    """Checks records independently of their neighbours outside the chunk (seq and links inside it)."""
    if isinstance(lines, bytes):
        lines = lines.split(b"\n")
    problems: list[tuple[str, str]] = []
    leaves = bytearray()
    tenants: set[str] = set()
    pruned: list[tuple[int, int | None, bytes, bool]] = []
    signed = 0
    first_seq = first_prev = last_seq = last_hash = None
    number = start_line - 1
    for line in lines:
        number += 1
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            record, leaf, entry_hash, signature, is_stub = _read_line(line)
            seq = int(record["seq"])
            where = f"record {seq}"
            prev = str(record["prev_hash"])
            if is_stub:
                pruning = record.get("pruning")
                pruned.append((seq, None if pruning is None else int(pruning), leaf, signature is not None))
        except (ValueError, KeyError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
            problems.append((where, f"unreadable record ({type(exc).__name__}: {exc})"))
            leaves.extend(b"\0" * 32)
            continue
        leaves.extend(leaf)
        tenants.add(str(record.get("tenant_id")))
        leaf_hex = leaf.hex()
        if leaf_hex != entry_hash:
            problems.append((where, "content does not match its entry hash: the record was changed"))
        if last_seq is not None:
            if seq != last_seq + 1:
                problems.append((where, f"sequence gap: expected {last_seq + 1}, found {seq}"))
            if prev != last_hash:
                problems.append((where, "chain broken: prev_hash is not the previous record's entry hash"))
        else:
            first_seq, first_prev = seq, prev
        key_id = record.get("key_id")
        if key_id is not None or signature is not None:
            public = _KEYS.get(str(key_id))
            if public is None:
                problems.append((where, f"signed with unknown key {key_id}"))
            elif not isinstance(signature, str) or not verify_signature(
                public, bytes.fromhex(signature), leaf
            ):
                problems.append((where, f"signature does not verify with key {key_id}"))
            else:
                signed += 1
        last_seq, last_hash = seq, leaf_hex
    return ChunkResult(
        start_line,
        first_seq,
        first_prev,
        last_seq,
        last_hash,
        bytes(leaves),
        tenants,
        signed,
        problems,
        pruned,
    )


def _blocks(handle: BinaryIO, digest: Any) -> Iterator[tuple[int, bytes]]:
    """Whole lines, about BLOCK bytes at a time, with the number of their first line.

    The file is read once: its SHA-256 (for the manifest check) is taken from the same reads.
    """
    carry = b""
    line = 1
    while True:
        data = handle.read(BLOCK)
        if not data:
            break
        digest.update(data)
        data = carry + data
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            carry = data
            continue
        block, carry = data[:cut], data[cut:]
        yield line, block
        line += block.count(b"\n")
    if carry:
        yield line, carry


def _load_keys(raw: bytes) -> dict[str, bytes]:
    doc = json.loads(raw)
    keys = doc.get("keys", doc)
    return {str(k): base64.b64decode(v) for k, v in keys.items()}


@dataclass
class PruningCheck:
    """A pruning read from the export, and what the records have shown of it so far."""

    number: int
    document: dict[str, Any]
    ranges: list[tuple[int, int]]
    valid: bool
    signed: bool
    seen: int = 0
    digest: Any = field(default_factory=hashlib.sha256)

    def covers(self, seq: int) -> bool:
        return any(a <= seq <= b for a, b in self.ranges)


def _years_before(moment: datetime, years: int) -> datetime:
    """The same calendar moment `years` earlier (29 February becomes 28), as PostgreSQL subtracts years."""
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:
        return moment.replace(year=moment.year - years, day=28)


def _check_signed(
    report: Report, where: str, keys: dict[str, bytes], key_id: Any, signature: Any, document: dict[str, Any]
) -> None:
    """Reports `where` unless `signature` verifies over `document`'s canonical bytes with `key_id`."""
    public = keys.get(key_id)
    if public is None or not verify_signature(public, bytes.fromhex(signature or ""), canonical(document)):
        report.add(where, f"signature does not verify with key {key_id}")


def _check_pruning(item: dict[str, Any], report: Report, keys: dict[str, bytes]) -> PruningCheck:
    document, signature = item["pruning"], item.get("signature")
    number = int(document["number"])
    where = f"pruning {number}"
    problems_before = len(report.problems)
    key_id = document.get("key_id")
    if key_id is not None:
        _check_signed(report, where, keys, key_id, signature, document)
    elif signature is not None:
        report.add(where, "carries a signature but names no key")
    if document.get("type") != PRUNING_TYPE:
        report.add(where, f"unknown pruning type {document.get('type')!r}")
    if report.tenant_id is not None and document.get("tenant_id") != report.tenant_id:
        report.add(where, "belongs to another tenant")
    ranges = [(int(a), int(b)) for a, b in document["ranges"]]
    if any(a > b for a, b in ranges) or any(b >= c for (_, b), (c, _) in itertools.pairwise(ranges)):
        report.add(where, "its ranges are not ascending and disjoint")
    if sum(b - a + 1 for a, b in ranges) != int(document["records"]):
        report.add(where, f"its ranges do not hold the {document['records']} records it names")
    if ranges and ranges[-1][1] > int(document["tree_size"]):
        report.add(where, "covers records beyond the ledger it was made on")
    pruned_at = datetime.fromisoformat(str(document["pruned_at"]))
    cutoff = datetime.fromisoformat(str(document["cutoff"]))
    if cutoff > _years_before(pruned_at, int(document["retention_years"])):
        report.add(where, f"its cutoff is within the {document['retention_years']}-year retention")
    return PruningCheck(
        number, document, ranges, valid=len(report.problems) == problems_before, signed=key_id is not None
    )


def _load_prunings(
    export: Export, manifest: dict[str, Any], report: Report, keys: dict[str, bytes]
) -> dict[int, PruningCheck]:
    found: dict[int, PruningCheck] = {}
    if PRUNINGS not in (manifest.get("files") or {}):
        return found  # an export without prunings: any pruned stub in it is reported as such
    with export.open(PRUNINGS) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                check = _check_pruning(json.loads(line), report, keys)
            except (ValueError, KeyError, TypeError) as exc:
                report.add(f"prunings line {number}", f"unreadable pruning ({type(exc).__name__}: {exc})")
                continue
            if check.number in found:
                report.add(f"pruning {check.number}", "appears twice")
            found[check.number] = check
            report.prunings += 1
    return found


def _check_stubs(chunk: ChunkResult, report: Report, prunings: dict[int, PruningCheck]) -> None:
    for seq, number, leaf, signed in chunk.pruned:
        where = f"record {seq}"
        report.pruned_records += 1
        pruning = prunings.get(number) if number is not None else None
        if pruning is None or not pruning.covers(seq):
            report.add(where, "its content was removed outside a retention pruning")
            continue
        pruning.seen += 1
        pruning.digest.update(leaf)
        if not pruning.valid:
            report.add(where, f"its content was removed by pruning {number}, which does not verify")
        elif signed and not pruning.signed:
            report.add(where, f"a signed record was emptied by unsigned pruning {number}")


def _close_prunings(report: Report, prunings: dict[int, PruningCheck]) -> None:
    for pruning in prunings.values():
        where = f"pruning {pruning.number}"
        if pruning.seen != int(pruning.document["records"]):
            report.add(
                where, f"names {pruning.document['records']} pruned records, the export has {pruning.seen}"
            )
        elif pruning.digest.hexdigest() != pruning.document["entries_sha256"]:
            report.add(where, "the entry hashes of the records it pruned do not match its own")


def verify_export(path: Path, *, trusted_keys: Path | None = None, workers: int | None = None) -> Report:
    report = Report()
    export = Export(path)
    try:
        _verify(export, report, trusted_keys, workers or os.cpu_count() or 1)
    finally:
        export.close()
    return report


def _verify(export: Export, report: Report, trusted_keys: Path | None, workers: int) -> None:
    if not export.exists("manifest.json"):
        report.add("manifest", "the export has no manifest.json")
        return
    with export.open("manifest.json") as handle:
        manifest = json.loads(handle.read())
    if manifest.get("format") != EXPORT_FORMAT:
        report.add("manifest", f"unknown export format {manifest.get('format')!r}")
        return
    report.tenant_id = manifest.get("tenant_id")
    listed = manifest.get("files") or {}
    names = (*FILES, *([PRUNINGS] if PRUNINGS in listed else []))
    expected = {name: listed.get(name, {}).get("sha256") for name in names}
    for name in names:
        if not export.exists(name):
            report.add(f"file {name}", "missing from the export")
        elif name != RECORDS and expected[name] != export.sha256(name):
            report.add(f"file {name}", "its SHA-256 does not match the manifest")
    if trusted_keys is not None:
        keys = _load_keys(trusted_keys.read_bytes())
        report.keys_trusted = True
    else:
        with export.open("keys.json") as handle:
            keys = _load_keys(handle.read())
        report.warnings.append(
            "public keys were taken from the export itself; pass trusted keys obtained from the"
            " platform operator for an independent check"
        )
    signature = manifest.get("signature")
    body = {k: v for k, v in manifest.items() if k != "signature"}
    key_id = manifest.get("key_id")
    if key_id is not None:
        _check_signed(report, "manifest", keys, key_id, signature, body)
    checkpoints = _read_checkpoints(export)
    prunings = _load_prunings(export, manifest, report, keys)
    if export.exists(RECORDS):
        trees = _Trees({int(item["checkpoint"]["tree_size"]) for item in checkpoints})
        found = _verify_records(export, report, keys, workers, trees, prunings)
        if found != expected[RECORDS]:
            # Named first, as the other files' hashes are: the file itself is not what was exported.
            problem = Problem(f"file {RECORDS}", "its SHA-256 does not match the manifest")
            report.problems.insert(0, problem)
            del report.problems[MAX_PROBLEMS:]
        _close_prunings(report, prunings)
        _verify_checkpoints(report, keys, checkpoints, trees)
    _verify_notes(export, report)
    if manifest.get("tree_size") != report.records:
        report.add("manifest", f"names {manifest.get('tree_size')} records, the export has {report.records}")


class _Trees:
    """The Merkle frontier over the records as they arrive, with the root at every checkpoint's size."""

    def __init__(self, sizes: set[int]) -> None:
        self.sizes = sorted(sizes)
        self.roots: dict[int, bytes] = {}
        self.frontier: merkle.Frontier = []
        self.size = 0
        self._next = 0

    def extend(self, leaves: bytes) -> None:
        hashes = [leaves[i : i + 32] for i in range(0, len(leaves), 32)]
        done = 0
        while self._next < len(self.sizes) and self.sizes[self._next] <= self.size + len(hashes):
            target = self.sizes[self._next]
            if target > self.size:
                self.frontier = merkle.extend(self.frontier, hashes[done : done + target - self.size])
                done += target - self.size
                self.size = target
            if target > 0:
                self.roots[target] = merkle.frontier_root(self.frontier)
            self._next += 1
        self.frontier = merkle.extend(self.frontier, hashes[done:])
        self.size += len(hashes) - done


def _verify_records(
    export: Export,
    report: Report,
    keys: dict[str, bytes],
    workers: int,
    trees: _Trees,
    prunings: dict[int, PruningCheck],
) -> str:
    """Checks every record on `workers` processes; returns the SHA-256 of evidence.jsonl."""
    digest = hashlib.sha256()
    with export.open(RECORDS) as handle:
        blocks = _blocks(handle, digest)
        if workers > 1:
            with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(keys,)) as pool:
                _merge(_bounded(pool, blocks, 2 * workers), report, trees, prunings)
        else:
            _init_worker(keys)
            _merge((check_chunk(start, block) for start, block in blocks), report, trees, prunings)
    return digest.hexdigest()


def _bounded(
    pool: ProcessPoolExecutor, chunks: Iterator[tuple[int, bytes]], window: int
) -> Iterator[ChunkResult]:
    """Results in order, with at most `window` chunks read ahead: memory stays flat for any export size."""
    pending: deque[Future[ChunkResult]] = deque()
    for start, block in chunks:
        pending.append(pool.submit(check_chunk, start, block))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _merge(
    results: Iterator[ChunkResult], report: Report, trees: _Trees, prunings: dict[int, PruningCheck]
) -> None:
    previous_seq, previous_hash = 0, GENESIS
    for chunk in results:
        if chunk.first_seq is not None:
            where = f"record {chunk.first_seq}"
            if chunk.first_seq != previous_seq + 1:
                report.add(where, f"sequence gap: expected {previous_seq + 1}, found {chunk.first_seq}")
            if chunk.first_prev != previous_hash:
                report.add(where, "chain broken: prev_hash is not the previous record's entry hash")
        for where, message in chunk.problems:
            report.add(where, message)
        _check_stubs(chunk, report, prunings)
        if report.tenant_id is not None and chunk.tenants - {report.tenant_id}:
            report.add(f"records from line {chunk.start_line}", "records of another tenant are mixed in")
        trees.extend(chunk.leaves)
        report.records += len(chunk.leaves) // 32
        report.signed_records += chunk.signed
        if chunk.last_seq is not None:
            previous_seq, previous_hash = chunk.last_seq, chunk.last_hash or ""


def _read_checkpoints(export: Export) -> list[dict[str, Any]]:
    if not export.exists("checkpoints.jsonl"):
        return []
    with export.open("checkpoints.jsonl") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _verify_checkpoints(
    report: Report, keys: dict[str, bytes], checkpoints: list[dict[str, Any]], trees: _Trees
) -> None:
    previous: dict[str, Any] | None = None
    done = 0
    for item in checkpoints:
        document, signature = item["checkpoint"], item.get("signature")
        size = int(document["tree_size"])
        where = f"checkpoint {size}"
        report.checkpoints += 1
        key_id = document.get("key_id")
        if key_id is not None:
            _check_signed(report, where, keys, key_id, signature, document)
        if size > report.records:
            report.add(where, f"covers {size} records but the export has {report.records}")
            continue
        if size < done:
            report.add(where, "checkpoints are out of order")
            continue
        done = size
        root = trees.roots[size].hex() if size in trees.roots else merkle.EMPTY_ROOT.hex()
        if root != document["root_hash"]:
            report.add(where, "its Merkle root does not match the records it covers")
        if previous is not None:
            proof = [bytes.fromhex(p) for p in item.get("consistency_proof") or []]
            if not merkle.verify_consistency(
                int(previous["tree_size"]),
                size,
                bytes.fromhex(previous["root_hash"]),
                bytes.fromhex(document["root_hash"]),
                proof,
            ):
                report.add(where, f"consistency proof from {previous['tree_size']} does not verify")
        previous = document
        report.tree_size, report.root_hash = size, document["root_hash"]
    if report.records and report.tree_size != report.records:
        covered = f"the last checkpoint covers {report.tree_size} of {report.records} records"
        report.add("checkpoints", covered)


def _verify_notes(export: Export, report: Report) -> None:
    with export.open("notes.jsonl") as handle:
        for line in io.TextIOWrapper(handle, encoding="utf-8"):
            if not line.strip():
                continue
            note = json.loads(line)
            report.notes += 1
            body = {k: note[k] for k in ("evidence_seq", "author", "note", "created_at")}
            if hashlib.sha256(canonical(body)).hexdigest() != note.get("note_hash"):
                report.add(f"note on record {note.get('evidence_seq')}", "its text does not match its hash")
            if not 1 <= int(note["evidence_seq"]) <= report.records:
                report.add(f"note on record {note.get('evidence_seq')}", "names a record not in the export")
