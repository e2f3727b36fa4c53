"""Turning findings into a corrected graph: apply, prune, check."""

from graphdoc.rewrite.fixer import FixReport, fix

__all__ = ["FixReport", "fix"]
