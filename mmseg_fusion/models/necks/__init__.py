"""Registered necks."""

__all__ = []
