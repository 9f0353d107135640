"""One error type for bad input.

Every problem found in user input (data files, codebook, config) is a :class:`Problem` that names
the file, the row as a person sees it in a spreadsheet (header = row 1, first data row = row 2),
the column, the offending value and what was expected. Checks collect *all* problems and raise a
single :class:`InputError` carrying them, so a user fixes everything in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

    def short(self) -> str:
        """One line in the compiler's form, for options (a key path rather than a column):
        ``config.yaml:23: models.method = 'REMl': expected one of: REML, ML``."""
        where = self.file if self.row is None else f"{self.file}:{self.row}"
        what = self.column or ""
        if self.value is not None and self.value != self.column:
            what = f"{what} = {self.value!r}" if what else repr(self.value)
        head = "warning: " if self.severity == "warning" else ""
        return f"{head}{where}: {what + ': ' if what else ''}expected {self.expected}"

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.message()


def problems_frame(problems: Iterable[Problem]) -> pd.DataFrame:
    """The problems as a table (columns: severity, file, row, column, value, expected, check)."""
    cols = ["severity", "file", "row", "column", "value", "expected", "check"]
    rows = [p.to_dict() for p in problems]
    import pandas as pd

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
        self.summary = head
        super().__init__("\n".join(lines))

    def short(self) -> str:
        """The summary and one :meth:`Problem.short` line per error, then per warning (no more
        than 50 lines)."""
        problems = self.errors + self.warnings
        lines = [self.summary] + ["  " + p.short() for p in problems[:50]]
        if len(problems) > 50:
            lines.append(f"  ... and {len(problems) - 50} more")
        return "\n".join(lines)
