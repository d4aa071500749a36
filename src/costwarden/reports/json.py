"""The JSON form of a grouped report (schema ``costwarden.report/1``)."""

from __future__ import annotations

import json
from typing import IO

from costwarden.reports.summary import Report


def write_json(report: Report, out: IO[str]) -> None:
    """The :meth:`Report.to_dict` document, indented."""
    json.dump(report.to_dict(), out, indent=2)
    out.write("\n")
