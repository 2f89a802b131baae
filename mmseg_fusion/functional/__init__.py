"""Pure functions (no modules, no registry): the math of the fusion methods.

Shapes are documented per function; every function is tested against a naive reference.
"""

__all__ = []
