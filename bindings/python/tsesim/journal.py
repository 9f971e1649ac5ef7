"""The journal and jobs (owned by pyjobs; stub until that lands)."""

__all__ = []
