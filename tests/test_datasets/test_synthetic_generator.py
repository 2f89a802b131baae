import hashlib
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from mmseg_fusion.datasets import CLASSES, generate_dataset, generate_sample


def digest(root: str) -> str:
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            with open(osp.join(dirpath, name), 'rb') as f:
                h.update(name.encode() + f.read())
    return h.hexdigest()


def test_layout_and_content(tmp_path):
    root = str(tmp_path / 'ds')
    counts = generate_dataset(root, num_train=6, num_val=3, image_size=48, seed=1)
    assert counts == {'train': 6, 'val': 3}
    for split, n in counts.items():
        imgs = sorted(os.listdir(osp.join(root, 'img_dir', split)))
        anns = sorted(os.listdir(osp.join(root, 'ann_dir', split)))
        assert imgs == anns == [f'{i:05d}.png' for i in range(n)]
    img = cv2.imread(osp.join(root, 'img_dir', 'train', '00000.png'), cv2.IMREAD_UNCHANGED)
    ann = cv2.imread(osp.join(root, 'ann_dir', 'train', '00000.png'), cv2.IMREAD_UNCHANGED)
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8
    assert ann.shape == (48, 48) and ann.dtype == np.uint8
    assert ann.max() < len(CLASSES)
    # nothing but the dataset is left next to it
    assert os.listdir(tmp_path) == ['ds']


def test_deterministic(tmp_path):
    a, b, c = (str(tmp_path / n) for n in 'abc')
    generate_dataset(a, num_train=3, num_val=2, image_size=32, seed=5)
    generate_dataset(b, num_train=3, num_val=2, image_size=32, seed=5)
    generate_dataset(c, num_train=3, num_val=2, image_size=32, seed=6)
    assert digest(a) == digest(b) != digest(c)


def test_objects_span_scales():
    sizes = []
    for i in range(200):
        _, labels = generate_sample(np.random.default_rng(i), image_size=128)
        for cls in range(1, len(CLASSES)):
            n, _, stats, _ = cv2.connectedComponentsWithStats((labels == cls).astype(np.uint8))
            sizes += [max(s[2], s[3]) for s in stats[1:]]
    sizes = np.array(sizes)
    assert sizes.min() <= 6 and sizes.max() >= 56
    # log-uniform sizes: plenty of both small and large objects
    assert (sizes <= 12).mean() > 0.15 and (sizes >= 32).mean() > 0.15
    # every class appears
    labels = np.stack([generate_sample(np.random.default_rng(i), 64)[1] for i in range(20)])
    assert set(np.unique(labels)) == set(range(len(CLASSES)))


def test_refuses_to_overwrite(tmp_path):
    root = tmp_path / 'ds'
    root.mkdir()
    (root / 'keep.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='not empty'):
        generate_dataset(str(root), num_train=2, num_val=1, image_size=32)
    assert (root / 'keep.txt').read_text() == 'mine'
    generate_dataset(str(root), num_train=2, num_val=1, image_size=32, overwrite=True)
    assert not (root / 'keep.txt').exists()
    assert sorted(os.listdir(root)) == ['ann_dir', 'img_dir']
    assert os.listdir(tmp_path) == ['ds']


def test_empty_existing_folder_is_used(tmp_path):
    (tmp_path / 'ds').mkdir()
    generate_dataset(str(tmp_path / 'ds'), num_train=1, num_val=1, image_size=32)
    assert sorted(os.listdir(tmp_path / 'ds')) == ['ann_dir', 'img_dir']


def test_interrupted_run_leaves_nothing(tmp_path):
    def stop(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_dataset(str(tmp_path / 'ds'), num_train=4, num_val=1, image_size=32,
                         progress=stop)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_train=0), 'num_train must be >= 1, got 0'),
    (dict(image_size=8), 'image_size must be >= 16, got 8'),
    (dict(min_size=100), r'min_size must be in \[1, image_size/2'),
])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_dataset(str(tmp_path / 'ds'), **kwargs)


def test_cli(tmp_path, repo_root, run_tool):
    script = osp.join(repo_root, 'tools', 'dataset_converters', 'synthetic_scales.py')
    out = run_tool([script, tmp_path / 'ds', '--num-train', '3', '--num-val', '2',
                    '--image-size', '32'])
    assert "{'train': 3, 'val': 2}" in out.stdout
    again = run_tool([script, tmp_path / 'ds', '--num-train', '3'], check=False)
    assert again.returncode == 2 and 'not empty' in again.stdout


def test_styles():
    rng = [0, 3]
    classic = generate_sample(np.random.default_rng(rng), 64, 8.0, 8)
    default = generate_sample(np.random.default_rng(rng), 64, 8.0, 8, style='classic')
    legible = generate_sample(np.random.default_rng(rng), 64, 8.0, 8, style='legible')
    assert all((a == b).all() for a, b in zip(classic, default))
    assert not (classic[0] == legible[0]).all()
    # triangles are drawn larger in the legible style, the rest of the layout is the same
    assert (legible[1] == 3).sum() >= (classic[1] == 3).sum()
    with pytest.raises(ValueError, match="style must be one of .*got 'bold'"):
        generate_sample(np.random.default_rng(0), 64, style='bold')


def test_dataset_style(tmp_path):
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    generate_dataset(a, num_train=2, num_val=1, image_size=32, seed=5)
    generate_dataset(b, num_train=2, num_val=1, image_size=32, seed=5, style='legible')
    assert digest(a) != digest(b)
    with pytest.raises(ValueError, match="style must be one of"):
        generate_dataset(str(tmp_path / 'c'), style='bold')


def _component_sizes(labels: np.ndarray, cls: int) -> list:
    _, _, stats, _ = cv2.connectedComponentsWithStats((labels == cls).astype(np.uint8))
    return [max(s[2], s[3]) for s in stats[1:]]


def test_style_objects_sizes_and_textures():
    import dataclasses

    from mmseg_fusion.datasets.synthetic_generator import STYLES, SampleStyle
    rng = [0, 5]
    # a SampleStyle equal to a named one gives the same sample
    same = generate_sample(np.random.default_rng(rng), 64, 8.0, 8, style=SampleStyle())
    assert all((a == b).all() for a, b in zip(same, generate_sample(
        np.random.default_rng(rng), 64, 8.0, 8, style='classic')))
    # larger objects: some wider than half the image (the default's largest)
    wide = dataclasses.replace(STYLES['legible'], max_size_ratio=1.25)
    sizes = [s for i in range(60) for c in range(1, 5)
             for s in _component_sizes(generate_sample(np.random.default_rng(i), 64, 4.0, 6,
                                                       wide)[1], c)]
    assert max(sizes) > 40
    # classes with their own sizes: discs small, squares large
    own = dataclasses.replace(STYLES['legible'],
                              class_size_ratios=((0.05, 0.15), (0.5, 1.0), (0.1, 0.5),
                                                 (0.1, 0.5)))
    discs, squares = [], []
    for i in range(60):
        labels = generate_sample(np.random.default_rng(i), 64, 4.0, 6, own)[1]
        discs += _component_sizes(labels, 1)
        squares += [(labels == 2).sum()]
    assert discs and max(discs) <= 0.15 * 64 + 1
    assert max(squares) > 0.2 * 64 * 64
    # textures drawn at random: other images, still labelled
    shapes = dataclasses.replace(STYLES['legible'], textures_by_class=False)
    a = generate_sample(np.random.default_rng(rng), 64, 8.0, 8, 'legible')
    b = generate_sample(np.random.default_rng(rng), 64, 8.0, 8, shapes)
    assert (a[1] > 0).any() and not (a[0] == b[0]).all()
