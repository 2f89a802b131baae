"""model-index.yml and configs/*/metafile.yaml: complete, every config exists and builds.

Counts are asserted (mmseg's own config test silently collects nothing when run from the wrong
folder): the entries parsed with YAML must equal the ``- Name:`` lines counted in the text.
"""
import glob
import os.path as osp
import re
import shlex

import pytest
import yaml
from mmengine.config import Config
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import mmseg_fusion  # noqa: F401

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
with open(osp.join(ROOT, 'model-index.yml')) as f:
    INDEX = yaml.safe_load(f)
METAFILES = INDEX['Import']


def load_metafile(rel):
    with open(osp.join(ROOT, rel)) as f:
        return yaml.safe_load(f)


ENTRIES = [(rel, model) for rel in METAFILES for model in load_metafile(rel)['Models']]
RESULT_SOURCES = ('mmseg model zoo', 'official README', 'none')


def test_index_imports_a_metafile_per_method_folder():
    folders = sorted(osp.basename(osp.dirname(p)) for p in glob.glob(
        osp.join(ROOT, 'configs', '*', '*.py')) if '_base_' not in p)
    methods = sorted(set(folders) - {'synthetic'})
    assert methods, 'no config folders found'
    assert sorted(osp.basename(osp.dirname(rel)) for rel in METAFILES) == methods
    for rel in METAFILES:
        assert osp.isfile(osp.join(ROOT, rel)), rel


def test_entry_count_matches_the_files():
    counted = 0
    for rel in METAFILES:
        with open(osp.join(ROOT, rel)) as f:
            text = f.read()
        models = text[text.index('\nModels:'):]
        counted += len(re.findall(r'^- Name: ', models, flags=re.M))
    assert counted > 0 and counted == len(ENTRIES)


def test_every_config_is_listed():
    listed = {model['Config'] for _, model in ENTRIES}
    for rel in METAFILES:
        folder = osp.dirname(rel)
        for path in glob.glob(osp.join(ROOT, folder, '*.py')):
            assert osp.relpath(path, ROOT) in listed, f'{path} is missing from {rel}'


def test_collections_and_fields():
    names = [model['Name'] for _, model in ENTRIES]
    assert len(names) == len(set(names)), 'model names must be unique'
    checked = 0
    for rel in METAFILES:
        doc = load_metafile(rel)
        collections = {c['Name']: c for c in doc['Collections']}
        for coll in collections.values():
            assert coll['Paper']['Title'] and coll['Paper']['URL'].startswith('https://')
            assert coll['Code']['URL'].startswith('https://github.com/')
            assert isinstance(coll['Metadata'], dict)
            if 'README' in coll:
                assert osp.isfile(osp.join(ROOT, coll['README'])), coll['README']
        for model in doc['Models']:
            assert model['In Collection'] in collections
            assert model['Name'] == osp.splitext(osp.basename(model['Config']))[0]
            meta = model['Metadata']
            for key in ('Training Data', 'Backbone', 'Crop Size', 'Batch Size', 'Architecture'):
                assert key in meta, (model['Name'], key)
            source = meta['Results Source']
            assert source.startswith(RESULT_SOURCES), source
            if source.startswith('none'):
                assert 'Results' not in model and 'Weights' not in model
            else:
                results = model['Results']
                assert results['Task'] == 'Semantic Segmentation' and results['Dataset']
                assert all(isinstance(v, float) for v in results['Metrics'].values())
            if source.startswith('mmseg model zoo'):
                assert model['Weights'].startswith('https://download.openmmlab.com/')
            # mmpretrain's convention: the official file and code at model level
            assert 'Official Weights' not in meta, model['Name']
            if source.startswith('official README'):
                assert 'Weights' not in model  # not loadable as is: see Converted From
                converted = model['Converted From']
                assert sorted(converted) == ['Code', 'Weights'], converted
                assert converted['Weights'].startswith('https://')
                assert converted['Code'] == collections[model['In Collection']]['Code']['URL']
            else:
                assert 'Converted From' not in model, model['Name']
            checked += 1
    assert checked > 0 and checked == len(ENTRIES)


@pytest.mark.parametrize('entry', ENTRIES, ids=[model['Name'] for _, model in ENTRIES])
def test_config_exists_and_builds(entry):
    _, model = entry
    path = osp.join(ROOT, model['Config'])
    assert osp.isfile(path), path
    register_all_modules()
    cfg = Config.fromfile(path)
    assert 'mmseg_fusion' in cfg.custom_imports['imports']
    cfg.model.pretrained = None
    if cfg.model.get('backbone') is not None:
        cfg.model.backbone.init_cfg = None
    segmentor = MODELS.build(cfg.model)
    head = cfg.model.decode_head
    heads = head if isinstance(head, list) else [head]
    assert type(segmentor.decode_head).__name__ == heads[0]['type']
    assert cfg.model.decode_head.type in model['Metadata']['Architecture'] or \
        cfg.model.get('neck', {}).get('type') in model['Metadata']['Architecture']


OFFICIAL = [(rel, model) for rel, model in ENTRIES
            if model['Metadata']['Results Source'].startswith('official README')]


def test_official_weights_are_listed():
    # the methods with an official release: AFA (3 models), CCNet and EMANet
    assert sorted({model['In Collection'] for _, model in OFFICIAL}) == ['AFA', 'CCNet', 'EMANet']
    assert len(OFFICIAL) == 5


def markdown_section(text: str, title: str) -> str:
    """The lines under a heading ``title`` up to the next heading (outside code blocks)."""
    lines, inside, fenced = [], False, False
    for line in text.splitlines():
        if line.startswith('```'):
            fenced = not fenced
        heading = not fenced and re.match(r'#+ ', line)
        if heading and inside:
            break
        if inside:
            lines.append(line)
        inside = inside or bool(heading and line.split(' ', 1)[1].strip() == title)
    return '\n'.join(lines)


@pytest.mark.parametrize('entry', OFFICIAL, ids=[model['Name'] for _, model in OFFICIAL])
def test_readme_converts_the_official_weights(entry):
    """The README's "Convert the official weights": one line converts, then tests."""
    rel, model = entry
    with open(osp.join(ROOT, osp.dirname(rel), 'README.md')) as f:
        section = markdown_section(f.read(), 'Convert the official weights')
    assert section, f'{rel}: the README has no "Convert the official weights" section'
    url = model['Converted From']['Weights']
    converter = re.search(r'tools/model_converters/\w+2fusion\.py',
                          model['Metadata']['Results Source']).group(0)
    assert osp.isfile(osp.join(ROOT, converter)), converter
    commands = [line for line in section.splitlines() if url in line]
    assert len(commands) == 1, f'{rel}: one line must convert {url}'
    steps = [shlex.split(step) for step in commands[0].split(' && ')]
    convert = [i for i, step in enumerate(steps) if step[:3] == ['python', converter, url]]
    assert len(convert) == 1 and convert[0] + 1 < len(steps), commands[0]
    args = steps[convert[0]][3:]
    if '--sha256' in args:
        assert re.fullmatch(r'[0-9a-f]{64}', args[args.index('--sha256') + 1]), args
    if '--config' in args:
        assert args[args.index('--config') + 1] == model['Config'], args
    # the converted file is what tools/test.py evaluates, with the model's config
    assert steps[convert[0] + 1][:4] == ['python', 'tools/test.py', model['Config'], args[0]]


def readme_links():
    links = []
    for readme in sorted(glob.glob(osp.join(ROOT, 'configs', '*', 'README.md'))):
        with open(readme) as f:
            text = f.read()
        for target in re.findall(r'\]\(([^)\s]+)\)', text):
            if re.match(r'[a-z]+:', target) or target.startswith('#'):
                continue
            links.append((readme, target.split('#')[0]))
    return links


def test_readme_links_to_local_files_resolve():
    links = readme_links()
    assert len(links) > 0
    missing = [f'{osp.relpath(readme, ROOT)}: {target}' for readme, target in links
               if not osp.exists(osp.normpath(osp.join(osp.dirname(readme), target)))]
    assert not missing, missing
