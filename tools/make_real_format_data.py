#!/usr/bin/env python
"""Write small synthetic VOC2007+2012, SBD and COCO 2017 sets in their real
on-disk formats (no download; deterministic from the seed).

The files go exactly where the real datasets are unpacked::

    <out>/VOCdevkit/VOC2007, <out>/VOCdevkit/VOC2012
    <out>/SBD/dataset/{cls,inst,img}, <out>/SBD/dataset/{train,val}.txt
    <out>/coco/{train2017,val2017,annotations}

so every tool and config of the project runs on them unchanged (see
``bombo/testing/real_format.py`` for the format facts reproduced).

Usage::

    python tools/make_real_format_data.py --out data --seed 0
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from bombo.testing.real_format import (DEFAULT_SCALE,  # noqa: E402
                                       make_real_format_data)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--out', default='data',
                        help='output root (VOCdevkit/, SBD/ and coco/ are '
                        'written under it)')
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed (one seed gives identical bytes)')
    parser.add_argument('--voc-images', type=int, default=12,
                        help='VOC2007 images (>= 6); about half get masks')
    parser.add_argument('--voc2012-images', type=int, default=None,
                        help='VOC2012 images of its own (2008-2011 ids, '
                        '>= 6; the 2007_ twins come on top); default 4/3 '
                        'of --voc-images')
    parser.add_argument('--twins-val', type=int, default=2,
                        help='2007_ twins in VOC2012 Segmentation/val.txt')
    parser.add_argument('--twins-train', type=int, default=1,
                        help='2007_ twins in VOC2012 Segmentation/train.txt')
    parser.add_argument('--coco-images', type=int, default=14,
                        help='COCO train2017 images (>= 5)')
    parser.add_argument('--coco-val-images', type=int, default=6,
                        help='COCO val2017 images (>= 4)')
    parser.add_argument('--num-classes-coco', type=int, default=20,
                        help='number of the 80 COCO categories the objects '
                        'are drawn from (spread over ids 1..90; the json '
                        'always lists all 80)')
    parser.add_argument('--scale', type=float, default=DEFAULT_SCALE,
                        help='image size factor: 1.0 gives real sizes '
                        '(500x375-like VOC, 640x480-like COCO)')
    parser.add_argument('--band', type=int, default=None,
                        help="width in px of VOC's 255 band along object "
                        'outlines; default max(2, round(5 * scale))')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        info = make_real_format_data(
            args.out, args.seed, voc_images=args.voc_images,
            voc2012_images=args.voc2012_images, twins_val=args.twins_val,
            twins_train=args.twins_train, coco_images=args.coco_images,
            coco_val_images=args.coco_val_images,
            num_classes_coco=args.num_classes_coco, scale=args.scale,
            band=args.band, progress=print)
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    v12 = info['voc2012']
    print(f'VOC2012 Segmentation/val: '
          f'{len(v12["lists"]["Segmentation/val"])} images, twins '
          f'{", ".join(v12["twins"]["val"])}')
    print(f'SBD ids with an official VOC2012 mask: '
          f'{", ".join(info["sbd"]["with_official_mask"])}')
    print(f'done in {time.perf_counter() - start:.1f} s -> {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
