"""LoadCheckedImageFromFile / LoadCheckedAnnotations: bad files raise a ValueError naming them."""
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, TRANSFORMS
from PIL import Image

import mmseg_fusion  # noqa: F401  (registers the transforms)
from mmseg_fusion.datasets import LoadCheckedAnnotations, LoadCheckedImageFromFile

H, W = 12, 17


def rgb(seed=0):
    return np.random.RandomState(seed).randint(0, 256, (H, W, 3), dtype=np.uint8)


def write(path, array):
    Image.fromarray(array).save(path)
    return str(path)


def load_image(path, **kwargs):
    return LoadCheckedImageFromFile(**kwargs)(dict(img_path=str(path)))


def load_pair(img, ann, num_classes=5, **kwargs):
    """Image then annotation, as the synthetic train pipeline loads them."""
    results = dict(img_path=str(img), seg_map_path=str(ann), reduce_zero_label=False,
                   seg_fields=[])
    results = LoadCheckedImageFromFile()(results)
    return LoadCheckedAnnotations(num_classes=num_classes, **kwargs)(results)


@pytest.fixture
def good(tmp_path):
    img = write(tmp_path / 'img.png', rgb())
    ann = write(tmp_path / 'ann.png', (np.arange(H * W) % 5).reshape(H, W).astype(np.uint8))
    return img, ann


def test_good_sample_loads_like_mmcv_and_mmseg(good):
    img, ann = good
    results = load_pair(img, ann)
    reference = LoadImageFromFile()(dict(img_path=img))
    np.testing.assert_array_equal(results['img'], reference['img'])
    assert results['img'].dtype == np.uint8 and results['img_shape'] == (H, W)
    assert results['ori_shape'] == (H, W)
    np.testing.assert_array_equal(results['gt_seg_map'], np.asarray(Image.open(ann)))
    assert load_image(img, to_float32=True)['img'].dtype == np.float32


# ------------------------------------------------------------------ corrupt / truncated images
def encoded(ext):
    ok, buf = cv2.imencode(ext, rgb())
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize('name, data', [
    ('garbage.png', b'this is not an image' * 10),
    ('empty.png', b''),
    ('truncated.png', encoded('.png')[:-30]),
    ('half.png', encoded('.png')[:len(encoded('.png')) // 2]),
    ('truncated.jpg', encoded('.jpg')[:-10]),
    ('header_only.jpg', encoded('.jpg')[:200]),
])
def test_corrupt_or_truncated_image(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ValueError, match=rf"LoadCheckedImageFromFile: img_path "
                                         rf"'{re.escape(str(path))}' is not a readable image "
                                         rf'\(corrupt, empty or truncated file\?\)'):
        load_image(path)
    # as mmcv's ignore_empty: the sample is skipped instead
    assert load_image(path, ignore_empty=True) is None


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.png'):
        load_image(tmp_path / 'missing.png')
    assert load_image(tmp_path / 'missing.png', ignore_empty=True) is None


# ------------------------------------------------------------------ grayscale / alpha images
@pytest.mark.parametrize('name, image, kind', [
    ('gray.png', Image.fromarray(rgb()[..., 0]), r'is a grayscale image \(L\)'),
    ('gray16.png', Image.fromarray(rgb()[..., 0].astype(np.uint16) * 200),
     r'is a grayscale image \(I;16\)'),
    ('rgba.png', Image.fromarray(np.dstack([rgb(), rgb(1)[..., :1]])),
     r'has an alpha channel \(RGBA\)'),
    ('gray_alpha.png', Image.fromarray(np.dstack([rgb(), rgb(1)[..., :1]])).convert('LA'),
     r'has an alpha channel \(LA\)'),
])
def test_grayscale_and_alpha_images(tmp_path, name, image, kind):
    path = str(tmp_path / name)
    image.save(path)
    with pytest.raises(ValueError, match=rf"LoadCheckedImageFromFile: img_path "
                                         rf"'{re.escape(path)}' {kind}.*expected 3 colour "
                                         r'channels'):
        load_image(path)
    # an explicit opt-in gives mmcv's default conversion (3 channels)
    allowed = load_image(path, convert_gray=True, drop_alpha=True)['img']
    np.testing.assert_array_equal(allowed, LoadImageFromFile()(dict(img_path=path))['img'])
    assert allowed.shape == (H, W, 3)


def test_only_the_opted_in_conversion_is_allowed(tmp_path):
    gray = write(tmp_path / 'gray.png', rgb()[..., 0])
    rgba = write(tmp_path / 'rgba.png', np.dstack([rgb(), rgb(1)[..., :1]]))
    assert load_image(gray, convert_gray=True)['img'].shape == (H, W, 3)
    with pytest.raises(ValueError, match='has an alpha channel'):
        load_image(rgba, convert_gray=True)
    with pytest.raises(ValueError, match='is a grayscale image'):
        load_image(gray, drop_alpha=True)


def test_palette_and_jpeg_images_are_colour(tmp_path):
    palette = tmp_path / 'palette.png'
    Image.fromarray(rgb()).convert('P').save(palette)
    assert load_image(palette)['img'].shape == (H, W, 3)
    jpg = tmp_path / 'img.jpg'
    jpg.write_bytes(encoded('.jpg'))
    assert load_image(jpg)['img'].shape == (H, W, 3)


def test_image_loader_arguments():
    with pytest.raises(ValueError, match="LoadCheckedImageFromFile: color_type must be 'color' "
                                         r"or 'color_ignore_orientation', got 'grayscale'"):
        LoadCheckedImageFromFile(color_type='grayscale')
    assert 'drop_alpha=False' in repr(LoadCheckedImageFromFile())


# ------------------------------------------------------------------ label maps
def test_label_map_size_differs_from_image(tmp_path, good):
    img, _ = good
    ann = write(tmp_path / 'small.png', np.zeros((H - 2, W), np.uint8))
    with pytest.raises(ValueError, match=rf"LoadCheckedAnnotations: seg_map_path "
                                         rf"'{re.escape(ann)}' has size \({H - 2}, {W}\) "
                                         rf'\(H, W\), expected the size of its image '
                                         rf"\({H}, {W}\) \(image '{re.escape(img)}'\)"):
        load_pair(img, ann)


def test_label_map_checked_against_the_original_size_after_resize(good):
    img, ann = good
    # test pipelines resize the image before loading the annotation
    init_default_scope('mmseg')
    pipeline = Compose([dict(type='LoadCheckedImageFromFile'),
                        dict(type='Resize', scale=(40, 40), keep_ratio=True),
                        dict(type='LoadCheckedAnnotations', num_classes=5)])
    results = pipeline(dict(img_path=img, seg_map_path=ann, reduce_zero_label=False,
                            seg_fields=[]))
    assert results['img'].shape[:2] != (H, W)
    assert results['gt_seg_map'].shape == (H, W)


@pytest.mark.parametrize('values, bad', [([0, 4, 5], [5]), ([7, 1, 254], [7, 254])])
def test_label_values_outside_the_classes(tmp_path, good, values, bad):
    img, _ = good
    label = np.full((H, W), 255, np.uint8)
    label[0, :len(values)] = values
    ann = write(tmp_path / 'bad_values.png', label)
    with pytest.raises(ValueError, match=rf"LoadCheckedAnnotations: seg_map_path "
                                         rf"'{re.escape(ann)}' has label values "
                                         rf'{re.escape(str(bad))}, expected class indices in '
                                         r'\[0, 4\] \(num_classes=5\) or ignore_index 255'):
        load_pair(img, ann)


def test_ignore_index_and_reduce_zero_label(tmp_path, good):
    img, _ = good
    label = np.full((H, W), 255, np.uint8)
    label[0, :3] = [0, 3, 4]
    ann = write(tmp_path / 'ok.png', label)
    assert set(np.unique(load_pair(img, ann)['gt_seg_map'])) == {0, 3, 4, 255}
    # another ignore index: 255 is then a bad value
    with pytest.raises(ValueError, match=r'has label values \[255\].*or ignore_index 0'):
        load_pair(img, ann, num_classes=5, ignore_index=0)
    # reduce_zero_label: 0 -> 255, k -> k - 1, so 5 classes are labelled 1..5 in the file
    label[0, :3] = [0, 5, 1]
    write(ann, label)
    results = dict(img_path=img, seg_map_path=ann, reduce_zero_label=True, seg_fields=[])
    results = LoadCheckedAnnotations(num_classes=5)(LoadCheckedImageFromFile()(results))
    assert set(np.unique(results['gt_seg_map'])) == {0, 4, 255}


def test_colour_and_corrupt_label_maps(tmp_path, good):
    img, _ = good
    ann = write(tmp_path / 'colour.png', rgb())
    with pytest.raises(ValueError, match=rf"LoadCheckedAnnotations: seg_map_path "
                                         rf"'{re.escape(ann)}' must be a single-channel "
                                         rf'\(H, W\) label map .*got shape \({H}, {W}, 3\)'):
        load_pair(img, ann)
    corrupt = tmp_path / 'corrupt.png'
    corrupt.write_bytes(encoded('.png')[:100])
    with pytest.raises(ValueError, match=rf"LoadCheckedAnnotations: seg_map_path "
                                         rf"'{re.escape(str(corrupt))}' is not a readable "
                                         r'label map'):
        load_pair(img, corrupt)


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_classes=0), r'LoadCheckedAnnotations: num_classes must be an int in \[1, 256\] '
                          r'\(labels are 8-bit\), got 0'),
    (dict(num_classes=300), r'LoadCheckedAnnotations: num_classes .* got 300'),
    (dict(num_classes=5.0), r'LoadCheckedAnnotations: num_classes .* got 5.0'),
    (dict(num_classes=5, ignore_index=None),
     r'LoadCheckedAnnotations: ignore_index must be an int, got None'),
])
def test_annotation_loader_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LoadCheckedAnnotations(**kwargs)


def test_registered():
    assert TRANSFORMS.get('LoadCheckedImageFromFile') is LoadCheckedImageFromFile
    assert TRANSFORMS.get('LoadCheckedAnnotations') is LoadCheckedAnnotations


# ------------------------------------------------------------------ the synthetic configs
def synthetic_cfg(repo_root, data_root):
    cfg = Config.fromfile(osp.join(repo_root, 'configs', '_base_', 'datasets',
                                   'synthetic_scales.py'))
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = data_root
    return cfg


def test_synthetic_pipelines_load_the_generated_data(repo_root, synthetic_root):
    init_default_scope('mmseg')
    cfg = synthetic_cfg(repo_root, synthetic_root)
    train = DATASETS.build(cfg.train_dataloader.dataset)
    # RandomResize (0.5-2) then RandomCrop 128: at most 128, exactly 128 for ratios >= 1
    np.random.seed(0)  # noqa: NPY002  (mmcv's random transforms draw from numpy's global RNG)
    shapes = [tuple(train[i % len(train)]['inputs'].shape[1:]) for i in range(8)]
    assert all(h == w <= 128 for h, w in shapes), shapes
    assert (128, 128) in shapes
    val = DATASETS.build(cfg.val_dataloader.dataset)
    assert val[0]['data_samples'].gt_sem_seg.data.shape == (1, 64, 64)
    tta = DATASETS.build(dict(cfg.val_dataloader.dataset, pipeline=cfg.tta_pipeline))
    assert len(tta[0]['inputs']) == 8


def test_synthetic_dataset_names_the_bad_file(tmp_path, repo_root):
    root = tmp_path / 'data'
    for split in ('img_dir/train', 'ann_dir/train'):
        os.makedirs(root / split)
    write(root / 'img_dir/train/00000.png', rgb())
    label = np.zeros((H, W), np.uint8)
    label[3, 3] = 9
    ann = write(root / 'ann_dir/train/00000.png', label)
    init_default_scope('mmseg')
    dataset = DATASETS.build(synthetic_cfg(repo_root, str(root)).train_dataloader.dataset)
    with pytest.raises(ValueError, match=rf"seg_map_path '{re.escape(ann)}' has label values "
                                         r'\[9\]'):
        dataset[0]


# ------------------------------------------------------------------ inference (no label)
def test_annotation_loader_steps_aside_without_a_label(good):
    """mmseg's inference APIs pass only the image: no ``seg_map_path``, nothing to check."""
    img, _ = good
    loader = LoadCheckedAnnotations(num_classes=5)
    for sample in (dict(img_path=img), dict(img_path=img, seg_map_path=None)):
        loaded = LoadCheckedImageFromFile()(dict(sample))
        keys = set(loaded)
        results = loader(loaded)
        assert set(results) == keys and 'gt_seg_map' not in results
    # an array, as LoadImageFromNDArray gives it (img_path None)
    results = loader(dict(img=rgb(), img_path=None, img_shape=(H, W), ori_shape=(H, W)))
    assert 'gt_seg_map' not in results


@pytest.mark.parametrize('base', ['synthetic_scales.py', 'synthetic_video.py'])
def test_synthetic_test_pipelines_suit_the_inference_apis(tmp_path, repo_root, base):
    """Training loads with both checked loaders; the test pipeline loads the image with
    mmseg's LoadImageFromFile (the name mmseg's inference APIs replace) and still checks every
    label tools/test.py loads."""
    cfg = Config.fromfile(osp.join(repo_root, 'configs', '_base_', 'datasets', base))
    train = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert train[:2] == ['LoadCheckedImageFromFile', 'LoadCheckedAnnotations']
    for pipeline in (cfg.test_pipeline, cfg.val_dataloader.dataset.pipeline,
                     cfg.test_dataloader.dataset.pipeline):
        types = [t['type'] for t in pipeline]
        assert types[0] == 'LoadImageFromFile' and 'LoadCheckedAnnotations' in types, types
        assert 'LoadAnnotations' not in types
    root = tmp_path / 'data'
    for split in ('img_dir/val', 'ann_dir/val'):
        os.makedirs(root / split)
    img = write(root / 'img_dir/val/00000.png', rgb())
    label = np.zeros((H, W), np.uint8)
    label[3, 3] = 9
    ann = write(root / 'ann_dir/val/00000.png', label)
    init_default_scope('mmseg')
    dataset = DATASETS.build(dict(cfg.test_dataloader.dataset, data_root=str(root)))
    with pytest.raises(ValueError, match=rf"seg_map_path '{re.escape(ann)}' has label values "
                                         r'\[9\]'):
        dataset[0]
    # the same pipeline on an image alone (what inference_model runs): no label, no error
    data = Compose(cfg.test_pipeline)(dict(img_path=img))
    assert 'gt_sem_seg' not in data['data_samples']
    assert data['data_samples'].ori_shape == (H, W)
