"""``MMSEG_FUSION_ENGINE``: whether ``import mmseg_fusion`` changes how mmengine behaves.

``import mmseg_fusion`` makes two changes to mmengine's behaviour for the whole process, both
through mmengine's own extension points:

* the atomic local file backend (:func:`~mmseg_fusion.engine.register_atomic_local_backend`);
* the safe local checkpoint loader (:func:`~mmseg_fusion.engine.register_checkpoint_loader`).

``MMSEG_FUSION_ENGINE=0`` (also ``false``, ``no``, ``off``) leaves both out, for users who want
only the models; ``1`` (also ``true``, ``yes``, ``on``, empty or unset) is the default. Any
other value is an error. What the import only *adds* stays in either case, since it changes
nothing that worked before: the registered components (models, datasets, transforms, hooks,
model wrappers: a config uses them only by naming them), the ``mmseg_fusion::`` config scope
(one more entry in mmengine's scope table) and the registries of that scope (children of
mmseg's that hold nothing). With the switch off, mmengine's Runner checkpoints do not load on
PyTorch >= 2.6 (mmengine's own ``UnpicklingError``), as without this package.
"""
import os

__all__ = ['ENGINE_SWITCH', 'engine_changes_enabled']

#: the environment variable of the switch
ENGINE_SWITCH = 'MMSEG_FUSION_ENGINE'

_ON = ('', '1', 'true', 'yes', 'on')
_OFF = ('0', 'false', 'no', 'off')


def engine_changes_enabled() -> bool:
    """Whether ``import mmseg_fusion`` makes its changes to mmengine (``MMSEG_FUSION_ENGINE``).

    Returns:
        bool: False for ``0``, ``false``, ``no``, ``off``; True for ``1``, ``true``, ``yes``,
        ``on``, empty or unset (case and surrounding spaces ignored).

    Raises:
        ValueError: For any other value, naming the variable, the value and the values
            expected.
    """
    value = os.environ.get(ENGINE_SWITCH, '')
    word = value.strip().lower()
    if word in _ON:
        return True
    if word in _OFF:
        return False
    raise ValueError(
        f'mmseg_fusion: environment variable {ENGINE_SWITCH}={value!r} is not understood; '
        f'expected 0 (or false/no/off: leave mmengine as it is, models only) or 1 (or '
        f'true/yes/on, the default: atomic local file writes and safe checkpoint loading)')
