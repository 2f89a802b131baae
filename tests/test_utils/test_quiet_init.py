"""init_weights_quietly: the weights are initialised, mmengine's per-parameter log is not shown,
and the logger's level comes back, also when init_weights fails."""
import logging

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.model import BaseModule

from mmseg_fusion.utils import init_weights_quietly


class Tiny(BaseModule):

    def __init__(self, fail: bool = False):
        super().__init__(init_cfg=dict(type='Constant', val=3.0, layer='Conv2d'))
        self.conv = torch.nn.Conv2d(2, 2, 1)
        self.fail = fail

    def init_weights(self):
        logger = MMLogger.get_current_instance()
        logger.info('per-parameter line')
        logger.warning('a warning')
        if self.fail:
            raise RuntimeError('init failed')
        super().init_weights()


class Collect(logging.Handler):

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_initialises_with_warnings_only_and_restores_the_level():
    logger = MMLogger.get_current_instance()
    logger.setLevel(logging.INFO)
    collect = Collect()
    logger.addHandler(collect)
    try:
        model = Tiny()
        init_weights_quietly(model)
    finally:
        logger.removeHandler(collect)
    assert (model.conv.weight == 3.0).all()
    assert 'a warning' in collect.messages and 'per-parameter line' not in collect.messages
    assert logger.level == logging.INFO
    with pytest.raises(RuntimeError, match='init failed'):
        init_weights_quietly(Tiny(fail=True))
    assert logger.level == logging.INFO
