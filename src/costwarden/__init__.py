"""costwarden: cost tracking and hard budget enforcement for LLM APIs."""

from __future__ import annotations

__version__ = "0.1.0"
