"""Registered losses."""
from .category_consistent_loss import CategoryConsistentLoss, category_consistent_terms

__all__ = ['CategoryConsistentLoss', 'category_consistent_terms']
