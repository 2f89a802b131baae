"""The registries of the ``mmseg_fusion`` scope: one under each of mmseg's, holding nothing.

Every component of this package registers into **mmseg's** registries
(``mmseg.registry.MODELS``, ``DATASETS``, ``TRANSFORMS``, ``HOOKS``, ...) under its public
name, so that mmseg configs (``default_scope='mmseg'``) find it. This module exists for
configs inherited with ``_base_ = 'mmseg_fusion::...'``
(:mod:`mmseg_fusion.engine.config_scope`): mmengine marks their components with
``_scope_='mmseg_fusion'``, imports ``mmseg_fusion.registry`` and looks them up in the
registries of that scope. Those are declared here as children of mmseg's registries, as
downstream OpenMMLab codebases declare theirs; a lookup falls through to mmseg's registry and
on to mmengine's.
"""
from typing import Dict

from mmengine.registry import Registry
from mmseg import registry as mmseg_registry

__all__ = ['SCOPE', 'REGISTRIES']

#: The config scope (``SCOPE::path/to/config.py``) and package name.
SCOPE = 'mmseg_fusion'


class _ScopeRegistry(Registry):
    """A registry of scope :data:`SCOPE` that holds nothing of its own.

    A lookup in it falls through to its parent (an mmseg registry) and the parent's ancestors,
    so it first imports what registers into them: this package, then the parent's own
    locations (mmseg's registries import their modules lazily, on their first lookup).
    """

    def import_from_location(self) -> None:
        if self.parent is not None:
            self.parent.import_from_location()
        super().import_from_location()


#: One child registry of scope :data:`SCOPE` per mmseg registry (``'MODELS'``, ``'HOOKS'``, ...).
REGISTRIES: Dict[str, Registry] = {
    # importing the package registers every component (in mmseg's registries)
    name: _ScopeRegistry(parent.name, parent=parent, scope=SCOPE, locations=[SCOPE])
    for name, parent in sorted(vars(mmseg_registry).items()) if isinstance(parent, Registry)
}
