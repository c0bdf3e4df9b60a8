"""The local engine: a manifest read batch by batch, each batch classified, problems and
duplicates noted, and a summary kept. The web job and the CLI both run this loop; a
distributed engine would run `classifier.classify` per partition and sum the class counts
(a `Summary` merge is not written yet). No Flask, no database: the caller brings the
snapshot and the sinks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from marketplace.compliance.classifier import CLASSES, RESULT_SCHEMA, RegistrySnapshot, classify
from marketplace.compliance.manifest import ManifestReader

EXAMPLES_PER_CLASS = 5
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
PROBLEMS_KEPT = 200


@dataclass
class Summary:
    """Counts per class, a few example rows of each, and the first row-level problems."""

    rows: int = 0  # rows classified
    skipped: int = 0  # rows that could not be read (each is a problem)
    duplicates: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    examples: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {c: [] for c in CLASSES}
    )
    problems: list[dict[str, Any]] = field(default_factory=list)
    problem_count: int = 0

    def note(self, row: int, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < PROBLEMS_KEPT:
            self.problems.append({"row": row, "message": message})

    def add(self, result: pa.RecordBatch) -> None:
        self.rows += result.num_rows
        classes = result.column("class").to_pylist()
        for name in CLASSES:
            self.counts[name] += classes.count(name)
        wanted = {c for c, e in self.examples.items() if len(e) < EXAMPLES_PER_CLASS}
        for i, name in enumerate(classes):
            if not wanted:
                break
            if name not in wanted:
                continue
            examples = self.examples[name]
            if len(examples) >= EXAMPLES_PER_CLASS - 1:
                wanted.discard(name)
            if len(examples) < EXAMPLES_PER_CLASS:
                examples.append(
                    {
                        "row": result.column("row")[i].as_py(),
                        "url": _printable(result.column("url")[i].as_py()),
                        "evidence": json.loads(result.column("evidence")[i].as_py()),
                    }
                )

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "skipped": self.skipped,
            "duplicates": self.duplicates,
            "counts": self.counts,
            "examples": self.examples,
            "problems": self.problems,
            "problem_count": self.problem_count,
        }


def _printable(text: str | None) -> str | None:
    """Control characters shown as U+FFFD: the summary is stored and shown, the rows file
    keeps the manifest's text as it was."""
    return None if text is None else _CONTROL.sub("\ufffd", text)


class Duplicates:
    """Rows repeating an earlier row's URL (as written, trimmed), or, without a URL, its
    SHA-256. Keeps 16 bytes per distinct row: a 64-bit hash of the text and the first row
    with it, in sorted arrays merged as they grow (a log-structured merge), so a million
    rows hold ~16 MB. Two different texts with one 64-bit hash would be taken for
    duplicates; at a million rows that is a one in ten million chance."""

    def __init__(self) -> None:
        self.parts: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []

    def check(
        self, rows: list[int], urls: list[str | None], digests: list[str | None]
    ) -> dict[int, int]:
        """index in batch -> the row it repeats."""
        where: list[int] = []
        hashes: list[int] = []
        for i, (url, digest) in enumerate(zip(urls, digests, strict=True)):
            text = url.strip() if url is not None else digest
            if text:
                where.append(i)
                hashes.append(hash(text))
        if not hashes:
            return {}
        keys = np.array(hashes, dtype=np.int64)
        numbers = np.array(rows, dtype=np.int64)[where]
        earlier = np.full(len(keys), -1, dtype=np.int64)
        for part_keys, part_rows in self.parts:
            at = np.minimum(np.searchsorted(part_keys, keys), len(part_keys) - 1)
            hit = (part_keys[at] == keys) & (earlier < 0)
            earlier[hit] = part_rows[at[hit]]
        unique, first = np.unique(keys, return_index=True)  # each key's first index here
        firsts = first[np.searchsorted(unique, keys)]
        again = (firsts != np.arange(len(keys))) & (earlier < 0)
        earlier[again] = numbers[firsts[again]]
        fresh = earlier[first] < 0
        self._add(unique[fresh], numbers[first[fresh]])
        return {where[i]: int(earlier[i]) for i in np.flatnonzero(earlier >= 0).tolist()}

    def _add(self, keys: npt.NDArray[np.int64], numbers: npt.NDArray[np.int64]) -> None:
        if not len(keys):
            return
        self.parts.append((keys, numbers))
        while len(self.parts) > 1 and len(self.parts[-1][0]) * 2 >= len(self.parts[-2][0]):
            (a_keys, a_rows), (b_keys, b_rows) = self.parts.pop(), self.parts.pop()
            merged_keys = np.concatenate([b_keys, a_keys])
            order = np.argsort(merged_keys, kind="stable")
            self.parts.append((merged_keys[order], np.concatenate([b_rows, a_rows])[order]))


def _with_problems(result: pa.RecordBatch, extra: dict[int, list[str]]) -> pa.RecordBatch:
    if not extra:
        return result
    problems: list[str | None] = result.column("problem").to_pylist()
    for i, messages in extra.items():
        joined = "; ".join(messages)
        problems[i] = joined if problems[i] is None else f"{problems[i]}; {joined}"
    columns = [result.column(name) for name in RESULT_SCHEMA.names[:-1]]
    return pa.RecordBatch.from_arrays(
        [*columns, pa.array(problems, pa.string())], schema=RESULT_SCHEMA
    )


def run(
    reader: ManifestReader,
    snapshot: RegistrySnapshot,
    intended_uses: Sequence[str],
    sink: Callable[[pa.RecordBatch], None],
    progress: Callable[[Summary, float], None] | None = None,
) -> Summary:
    """Classify every row of `reader` into `sink` (RESULT_SCHEMA batches, in file order)."""
    summary = Summary()
    duplicates = Duplicates()
    for batch, problems in reader.batches():
        rows: list[int] = batch.column("row").to_pylist()
        at = {row: i for i, row in enumerate(rows)} if problems else {}
        extra: dict[int, list[str]] = {}
        for problem in problems:
            i = at.get(problem.row)
            if i is None:
                summary.skipped += 1
            else:
                extra.setdefault(i, []).append(problem.message)
            summary.note(problem.row, problem.message)
        if batch.num_rows:
            result = classify(batch, snapshot, intended_uses)
            repeats = duplicates.check(
                rows, batch.column("url").to_pylist(), batch.column("sha256").to_pylist()
            )
            for i, earlier in repeats.items():
                extra.setdefault(i, []).append(f"duplicate of row {earlier}")
                summary.note(rows[i], f"duplicate of row {earlier}")
            summary.duplicates += len(repeats)
            for i, message in enumerate(result.column("problem").to_pylist()):
                if message is not None:
                    summary.note(rows[i], message)
            result = _with_problems(result, extra)
            summary.add(result)
            sink(result)
        if progress is not None:
            progress(summary, reader.progress)
    summary.problems.sort(key=lambda p: p["row"])
    return summary
