"""Exceptions raised for bad input. The classes are defined in the native module so that Rust
and Python raise the same types; stdlib types are used for I/O (``FileNotFoundError``) and bad
values (``ValueError``)."""

from plamo_fast._native import InvalidFileError, ModelMismatchError, PlamoFastError

__all__ = ["InvalidFileError", "ModelMismatchError", "PlamoFastError", "UsageError"]


class UsageError(PlamoFastError, ValueError):
    """A request that cannot be carried out as asked (conflicting options, an existing output)."""
