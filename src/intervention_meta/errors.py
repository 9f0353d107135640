"""One error type for bad input.

Every problem found in user input (data files, codebook, config) is a :class:`Problem` that names
the file, the row as a person sees it in a spreadsheet (header = row 1, first data row = row 2),
the column, the offending value and what was expected. Checks collect *all* problems and raise a
single :class:`InputError` carrying them, so a user fixes everything in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import pandas as pd

SEVERITIES = ("error", "warning")


@dataclass(frozen=True)
class Problem:
    """One problem in user input.

    ``row`` is the spreadsheet row number (header is row 1) or ``None`` when the problem concerns
    a whole file or column; ``column`` is ``None`` when it concerns a whole row or file.
    """

    file: str
    row: int | None
    column: str | None
    value: object
    expected: str
    severity: str = "error"
    check: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def message(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column '{self.column}'"
        return f"{where}: value {self.value!r}: expected {self.expected}"

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.message()


def problems_frame(problems: Iterable[Problem]) -> pd.DataFrame:
    """The problems as a table (columns: severity, file, row, column, value, expected, check)."""
    cols = ["severity", "file", "row", "column", "value", "expected", "check"]
    rows = [p.to_dict() for p in problems]
    return pd.DataFrame(rows, columns=cols)


class WithProblems:
    """The errors and warnings among an object's ``problems``."""

    problems: Sequence[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


class InputError(WithProblems, Exception):
    """Bad input: carries every :class:`Problem` found (errors and, for context, warnings)."""

    def __init__(self, problems: Iterable[Problem], summary: str | None = None):
        self.problems = list(problems)
        errors = self.errors
        head = summary or f"{len(errors)} problem(s) in the input"
        lines = [head] + ["  - " + p.message() for p in errors[:20]]
        if len(errors) > 20:
            lines.append(f"  ... and {len(errors) - 20} more")
        super().__init__("\n".join(lines))
