"""The callback listener (owned by pyjobs; stub until that lands)."""

__all__ = []
