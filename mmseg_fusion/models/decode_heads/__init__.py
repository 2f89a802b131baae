"""Registered decode heads."""

__all__ = []
