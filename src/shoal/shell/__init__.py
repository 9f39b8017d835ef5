"""The interactive shell (``shoal`` with no sub-command) and its terminal helpers."""

from shoal.shell.repl import Shell

__all__ = ["Shell"]
