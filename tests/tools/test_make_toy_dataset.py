"""tools/make_toy_dataset.py: the default preset is pinned byte for byte (the
checksums below are the output of the generator as committed before the
``hard`` preset was added: they *define* the default preset, which
``make demo`` and the README figures depend on); the ``hard`` preset has the
properties it documents."""
import hashlib
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tools'))

import make_toy_dataset as gen  # noqa: E402

# generate(out, seed=0, num_det=3, num_seg=2, num_val=2), default preset
DEFAULT_SHA256 = {
    'Annotations/000000.xml':
        '1fa71f3801460a5188404fe9fb48952a9457d264daa9e32bdfb9b58c1f04ee70',
    'Annotations/000001.xml':
        '3bc60719635ec09fde874dc1bdc818a1878a4f3041c7aabbfced4db7285a49c4',
    'Annotations/000002.xml':
        '4b15bddfc9c5f1fb4a3c7c50699ceab8f9aa7282bfe94e0c2f9cc55930873fb8',
    'Annotations/000003.xml':
        '9e385a1c499fe9e6d231ca7df5dc24730506097b4ea5e403c2be263e43331c8d',
    'Annotations/000004.xml':
        'd3ca267f1b9c269ffc6996e94ae6dd32892ab1651ebc6cdc0699811c74198e10',
    'Annotations/000005.xml':
        '2376910b442c0672374051fbbfcb301edd30a7e1e224deaa7c59351e2e5be619',
    'Annotations/000006.xml':
        'f954551b1cf463e87b4ba7138831a2d14cd51c161849073c3b944d17012ba1bb',
    'ImageSets/Main/det_train.txt':
        '33580cb15cf9600dc16dd0d95c951f9c88f8b4d8efc279ec86b380d06e45d016',
    'ImageSets/Main/seg_train.txt':
        'af92e356eb622efdcf7e1b4fe52a1efa1c0f8d58984e76fef4255715064dd885',
    'ImageSets/Main/val.txt':
        '2509fde4e4f372ef68d9a882c292aa772e6f18d649915f89d3a62d690c425508',
    'JPEGImages/000000.jpg':
        '9d0853c5db04cb326beabebc28919288f826d7901a44bdb490cc7c1ef230c7c0',
    'JPEGImages/000001.jpg':
        '1fd6c860a33a54d80705e02ac8fdaf02d5587470e09fb8d164476ffa18c70832',
    'JPEGImages/000002.jpg':
        '675fd9c8009b43263d803685351c0c5e1aca81f66aa2b88fe9fad22c77453255',
    'JPEGImages/000003.jpg':
        '6acc2ed1f884796ba175ece07cecbfbc8a877b7d1e1d1aa534ef0d823faa64f4',
    'JPEGImages/000004.jpg':
        '77c04c4a36c4432dafe8af90ce4e02201f9a09690df667f1bb3edf8f670c2dd3',
    'JPEGImages/000005.jpg':
        'ea195eb817c4d448a6787fb67b5283e7a882db4962c713203c0dbab237adf05a',
    'JPEGImages/000006.jpg':
        'b82672ddd660ea81f033faded465d5c36eb01d0abb85e193fcb4aa54202bed74',
    'SegmentationClass/000000.png':
        'ed24d646d3346dc93cf94971127310a99ef05d907114bcda8b80b4a500d890fb',
    'SegmentationClass/000001.png':
        '58522f64eefc983bda900b3b159e8f6f67401535e55c2c49563431e6e45b09f6',
    'SegmentationClass/000002.png':
        '3c406f0f2ae215f3864f96733e3671ee5b88a6efb0c789591f6d7d09badf43cd',
    'SegmentationClass/000003.png':
        '34abaa056fc37c66ed41cb1e20f91b13b7ff71aef5ae0b5f8802d6e6652d7a12',
    'SegmentationClass/000004.png':
        'a587f033b98062094c4727fc721997fbb522d9903212c8d4b4d34efcf2c4d697',
    'SegmentationClass/000005.png':
        '66ae3cbf3a1b886fa48211168e24fa21066a4c972764f91a222f604e279a63c7',
    'SegmentationClass/000006.png':
        '5bee00b97bf1ddec5d3b4a4309801c392bfbd96507a890249aa84a8fcc97d19a',
    'SegmentationObject/000000.png':
        '9785e897d4583510cccfa26c2486efd8ab2633c0071601d56f44e049668c09e7',
    'SegmentationObject/000001.png':
        '0cba906997ed75b9f7797c7a1452cea1d5d0eb82dc34ba9506f62d998b2f1e11',
    'SegmentationObject/000002.png':
        '3f67650629124201639b020244a7790e679eb50345509166200ed7aa4af55031',
    'SegmentationObject/000003.png':
        'bf825411437b826385f234a53aa3a884d2de4b47d7daed49b365912f08e928ca',
    'SegmentationObject/000004.png':
        'a8b5b75482046ad8f74cac9f855a51b9969001a4f7a48b4ca3da0a1ad3b4ad3c',
    'SegmentationObject/000005.png':
        'b1446e07ee73a82b15efa4632a0dfd0a94184c348b458a142467edcb5403baf0',
    'SegmentationObject/000006.png':
        '5bee00b97bf1ddec5d3b4a4309801c392bfbd96507a890249aa84a8fcc97d19a',
    'annotations/det_train.json':
        'e2200f47082a8d170ab2dc59c054ee0de2b217e49f72efd1351a2c2c57d3c6f9',
    'annotations/seg_train.json':
        'cc9421269176cc711b33855288ff793af3d61f9d124bb381ffc692c8d2f07589',
    'annotations/val.json':
        '1942690d16990eb6aac25f73f2b26eb0980fe5fd8e050b25bb17f11a3e38cb08',
}


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_default_preset_is_byte_identical(tmp_path):
    gen.generate(str(tmp_path), seed=0, num_det=3, num_seg=2, num_val=2)
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob('*')
                   if p.is_file())
    assert files == sorted(DEFAULT_SHA256)
    changed = [f for f in files if _sha(tmp_path / f) != DEFAULT_SHA256[f]]
    assert not changed, f'default preset output changed: {changed}'


def test_default_preset_explicit_name_is_the_same(tmp_path):
    gen.generate(str(tmp_path), seed=0, num_det=1, num_seg=0, num_val=0,
                 preset='default')
    for f in ('JPEGImages/000000.jpg', 'SegmentationClass/000000.png',
              'Annotations/000000.xml'):
        assert _sha(tmp_path / f) == DEFAULT_SHA256[f]


@pytest.fixture(scope='module')
def hard(tmp_path_factory):
    out = tmp_path_factory.mktemp('hard')
    gen.generate(str(out), seed=3, num_det=10, num_seg=4, num_val=4,
                 preset='hard', side_range=(96, 160))
    return out


def test_hard_preset_sizes_classes_and_annotations(hard):
    coco = json.loads((hard / 'annotations/det_train.json').read_text())
    assert [c['name'] for c in coco['categories']] == list(gen.HARD_CLASSES)
    assert len(gen.HARD_CLASSES) == 6
    sizes = set()
    for im in coco['images']:
        img = Image.open(hard / 'JPEGImages' / im['file_name'])
        assert img.size == (im['width'], im['height'])
        assert 96 <= im['width'] <= 160 and 96 <= im['height'] <= 160
        sizes.add(img.size)
        stem = im['file_name'][:-4]
        root = ET.parse(hard / 'Annotations' / f'{stem}.xml').getroot()
        assert int(root.find('size/width').text) == im['width']
        assert int(root.find('size/height').text) == im['height']
        objs = root.findall('object')
        assert objs, 'every hard image holds an object'
        assert all(o.find('name').text in gen.HARD_CLASSES for o in objs)
        obj = np.array(Image.open(hard / 'SegmentationObject' / f'{stem}.png'))
        cls = np.array(Image.open(hard / 'SegmentationClass' / f'{stem}.png'))
        assert obj.shape == cls.shape == (im['height'], im['width'])
        ids = set(np.unique(obj)) - {0, 255}
        assert ids == set(range(1, len(objs) + 1))
        assert set(np.unique(cls)) <= set(range(len(gen.HARD_CLASSES) + 1)) | {255}
    assert len(sizes) > 1 and any(w != h for w, h in sizes), 'mixed, non-square'
    anns = [a for a in coco['annotations']]
    assert len(anns) == sum(
        len(ET.parse(hard / 'Annotations' / f"{im['file_name'][:-4]}.xml")
            .getroot().findall('object')) for im in coco['images'])


def test_hard_preset_objects_are_textured_not_flat(hard):
    """Object pixels vary (texture + shading), unlike the default preset's
    flat colour plus N(0, 6) noise: median per-object std well above 6."""
    stds = []
    for p in sorted((hard / 'SegmentationObject').glob('*.png'))[:8]:
        obj = np.array(Image.open(p))
        img = np.asarray(Image.open(hard / 'JPEGImages' / f'{p.stem}.jpg'),
                         np.float32)
        for k in set(np.unique(obj)) - {0, 255}:
            m = obj == k
            if m.sum() > 50:
                stds.append(img[m].std(0).mean())
    assert np.median(stds) > 10


def test_hard_preset_merges_touching_same_class_instances(tmp_path):
    """As in SBD: no 255 border between two touching instances of one class
    in SegmentationClass (there is one in SegmentationObject)."""
    gen.generate(str(tmp_path), seed=0, num_det=30, num_seg=0, num_val=0,
                 preset='hard')
    import cv2
    k5 = np.ones((5, 5), np.uint8)
    found = 0
    for p in sorted((tmp_path / 'SegmentationObject').glob('*.png')):
        obj = np.array(Image.open(p))
        cls = np.array(Image.open(tmp_path / 'SegmentationClass' / p.name))
        root = ET.parse(tmp_path / 'Annotations' / f'{p.stem}.xml').getroot()
        names = [o.find('name').text for o in root.findall('object')]
        grown = [cv2.dilate((obj == k + 1).astype(np.uint8), k5).astype(bool)
                 for k in range(len(names))]
        for a in range(len(names)):
            for b in range(a + 1, len(names)):
                between = grown[a] & grown[b] & (obj == 255)
                if names[a] != names[b] or not between.any():
                    continue
                c = gen.HARD_CLASSES.index(names[a]) + 1
                # the object mask separates them, the class mask does not
                found += int((cls[between] == c).sum())
    assert found > 0, 'no merged same-class neighbours in 30 images'


def test_generate_rejects_unknown_preset(tmp_path):
    with pytest.raises(ValueError, match='unknown preset'):
        gen.generate(str(tmp_path), preset='photo')


def test_help_writes_nothing(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / 'tools/make_toy_dataset.py'),
                          '--help'], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout
    assert '--preset' in out and '(default: data/toy)' in out
    assert list(tmp_path.iterdir()) == []
