"""The README's retrofit recipe on every synthetic family: a plain checkpoint loads into the
SSR/HMA child config with only the scale attention missing."""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
MARKER = '<!-- retrofit recipe'
FAMILIES = sorted(
    p for d in ('synthetic', 'ccnet', 'emanet', 'a2net', 'afa', 'iaff')
    for p in glob.glob(osp.join(ROOT, 'configs', d, '*_synthetic-128x128.py')))


def readme_recipe() -> str:
    """The first python block after the README's retrofit marker."""
    with open(osp.join(ROOT, 'README.md')) as f:
        text = f.read()
    assert MARKER in text, 'README.md lost its retrofit recipe'
    block = re.search(r'```python\n(.*?)```', text[text.index(MARKER):], re.S)
    assert block, 'no python block after the retrofit marker'
    return block.group(1)


def child_config(tmp_path, base: str, fusion: str) -> Config:
    recipe = readme_recipe()
    assert re.search(r"^_base_ = '[^']+'", recipe, re.M)
    recipe = re.sub(r"^_base_ = '[^']+'", f'_base_ = {base!r}', recipe, flags=re.M)
    path = tmp_path / f'retrofit_{fusion}.py'
    path.write_text(recipe + f'model.update(fusion={fusion!r})\n')
    return Config.fromfile(str(path))


def test_the_shipped_synthetic_retrofit_follows_the_recipe(tmp_path):
    fcn = osp.join(ROOT, 'configs', 'synthetic', 'fcn_r18-d8_1xb8-600_synthetic-128x128.py')
    assert fcn in FAMILIES and len(FAMILIES) >= 9, FAMILIES  # CCNet(+CCL), EMANet, A2, AFA, iAFF
    recipe = child_config(tmp_path, fcn, 'ssr')
    shipped = Config.fromfile(osp.join(ROOT, 'configs', 'ssr',
                                       'ssr-retrofit_fcn_r18-d8_1xb8-40_synthetic-128x128.py'))
    assert recipe.load_from.endswith('iter_600.pth') and shipped.load_from.endswith('iter_600.pth')
    for cfg in (recipe, shipped):
        assert cfg.model.type == 'SSREncoderDecoder'
        assert tuple(cfg.model.test_cfg.scales) == (0.5, 0.75, 1.0, 1.5, 2.0)
        assert cfg.train_cfg.max_iters == cfg.param_scheduler[0].end == 40
        assert cfg.optim_wrapper.optimizer.lr == pytest.approx(0.004)
    # the shipped one also drops RandomResize (the measured recipe), the recipe keeps the base's
    assert shipped.train_dataloader.dataset.pipeline[2].ratio_range == (1.0, 1.0)
    assert recipe.train_dataloader.dataset.pipeline[2].ratio_range == (0.5, 2.0)


@pytest.mark.parametrize('fusion', ['ssr', 'hma'])
@pytest.mark.parametrize('config', FAMILIES, ids=lambda p: osp.basename(p).split('_')[0])
def test_plain_checkpoint_loads_with_only_the_scale_attention_missing(config, fusion, tmp_path):
    init_default_scope('mmseg')
    plain_cfg = Config.fromfile(config)
    assert plain_cfg.model.type == 'EncoderDecoder'
    plain = MODELS.build(plain_cfg.model)
    cfg = child_config(tmp_path, config, fusion)
    assert cfg.model.type == 'SSREncoderDecoder' and cfg.train_cfg.max_iters == 40
    assert cfg.param_scheduler[0].end == 40 and cfg.load_from.endswith('.pth')
    retrofit = MODELS.build(cfg.model)
    assert type(retrofit.fusion).__name__ == {'ssr': 'SSRScaleFusion',
                                              'hma': 'HMAScaleFusion'}[fusion]
    missing, unexpected = retrofit.load_state_dict(plain.state_dict(), strict=False)
    assert unexpected == []
    expected = sorted(k for k in retrofit.state_dict()
                      if k.startswith('scale_attention.') and not k.endswith('num_batches_tracked'))
    assert expected and sorted(missing) == expected
