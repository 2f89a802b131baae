"""Registered losses."""

__all__ = []
