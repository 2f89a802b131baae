"""Registered segmentors."""

__all__ = []
