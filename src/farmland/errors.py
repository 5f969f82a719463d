"""Exception hierarchy.

Every problem a user can fix raises a subclass of :class:`FarmlandError`. The CLI
turns these into one line on stderr and exit code 2, without a traceback.

Message template: what is wrong, where (file, row/feature id, column), what was
received, how to fix it.
"""

from __future__ import annotations

from collections.abc import Iterable


class FarmlandError(Exception):
    """Root of every error a user can act on."""


class InputError(FarmlandError, ValueError):
    """An input file or table cannot be used as given.

    Parameters
    ----------
    problem
        What is wrong, e.g. ``"pH outside 0-14"``.
    file
        Path or name of the input.
    row
        Row number, feature id or sample id where the problem is (optional).
    column
        Column (field) name (optional).
    value
        The value received (optional).
    fix
        How to fix it (optional but strongly encouraged).
    more
        Number of further rows with the same problem (reported, not listed).
    """

    def __init__(
        self,
        problem: str,
        *,
        file: object = None,
        row: object = None,
        column: str | None = None,
        value: object = None,
        fix: str | None = None,
        more: int = 0,
    ) -> None:
        self.problem = problem
        self.file = None if file is None else str(file)
        self.row = row
        self.column = column
        self.value = value
        self.fix = fix
        self.more = more
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row/id {self.row}")
        if self.column:
            where.append(f"column '{self.column}'")
        text = (": ".join([", ".join(where), self.problem]) if where else self.problem)
        if self.value is not None:
            text += f" (got {self.value!r})"
        if self.more:
            text += f"; {self.more} more row(s) with the same problem"
        if self.fix:
            text += f". Fix: {self.fix}"
        return text


class CRSError(InputError):
    """A coordinate reference system is missing, wrong or inconsistent."""


class StandardError(FarmlandError):
    """A standards table or a rules profile is malformed."""


class OutputExistsError(FarmlandError):
    """An output already exists and ``--overwrite`` was not given."""

    def __init__(self, *paths: object) -> None:
        self.paths = paths
        more = f" (and {len(paths) - 1} more)" if len(paths) > 1 else ""
        super().__init__(
            f"{paths[0]}: output already exists{more}. "
            "Fix: choose another output folder or pass --overwrite"
        )


class OutputError(FarmlandError, OSError):
    """An output cannot be written (disk full, no permission, a folder in the way …).

    Also an :class:`OSError`, so code catching ``OSError`` keeps working.
    """

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(
            f"{path}: cannot write the output ({reason}). Fix: check the free disk space and "
            "the write permission of the folder; nothing was replaced"
        )
        #: what went wrong, without the path and the fix (for a message that wraps it)
        self.reason = reason


def first_rows(index: Iterable[object], limit: int = 5) -> str:
    """Render the first ``limit`` ids of ``index`` for a message, e.g. ``'A1, A7 (+3 more)'``."""
    items = list(index)
    head = ", ".join(str(i) for i in items[:limit])
    return head + (f" (+{len(items) - limit} more)" if len(items) > limit else "")
