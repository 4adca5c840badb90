#!/usr/bin/env python
"""Detect and segment images with a bombo checkpoint (mmdetection's
``demo/image_demo.py`` for bombo's configs).

    python tools/image_demo.py IMG CONFIG --weights CKPT [--out-dir outputs]
        [--device cpu] [--pred-score-thr 0.3] [--cfg-options k=v ...]

IMG is an image file or a folder of images. For each image it writes

    OUT_DIR/vis/<image>                 the image with the boxes scoring at
                                        least --pred-score-thr and the
                                        semantic mask drawn
    OUT_DIR/preds/<image>.json          labels, scores, bboxes, sem_seg (COCO
                                        RLE per class) and sem_seg_path
    OUT_DIR/preds/<stem>_sem_seg.png    the label map (0 = background,
                                        k + 1 = class k)

with ``bombo.apis.PartialDetInferencer`` (docs/inference.md).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Detect and segment images with a bombo checkpoint: '
        'writes each image with its boxes and semantic mask drawn, and the '
        'predictions as json + a label-map PNG.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('img', help='an image file or a folder of images')
    parser.add_argument('config', help='the config the model was trained '
                        'with')
    parser.add_argument('--weights', required=True, default=argparse.SUPPRESS,
                        help='the checkpoint (.pth) to load (required)')
    parser.add_argument('--out-dir', default='outputs',
                        help='folder for vis/ (drawn images) and preds/ '
                        '(json and label-map PNGs)')
    parser.add_argument('--device', default=None,
                        help='device to run on, e.g. cpu or cuda:0 (None: '
                        'cuda:0 when CUDA is available, else cpu)')
    parser.add_argument('--pred-score-thr', type=float, default=0.3,
                        help='boxes scoring below it are not drawn (all are '
                        'kept in the json)')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='images per forward pass')
    parser.add_argument('--palette', default='none',
                        choices=['none', 'coco', 'voc', 'citys', 'random'],
                        help="class colours; 'none': the config's dataset "
                        'palette, else the checkpoint\'s')
    parser.add_argument('--show', action='store_true',
                        help='also display each drawn image in a window')
    parser.add_argument('--no-save-vis', action='store_true',
                        help='do not write the drawn images')
    parser.add_argument('--no-save-pred', action='store_true',
                        help='do not write the json and label-map PNGs')
    parser.add_argument('--print-result', action='store_true',
                        help='print the predictions')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default=None,
                        help='override config settings, key=value (e.g. '
                        'model.test_cfg.score_thr=0.1); data_root and '
                        'num_classes propagate as in every bombo tool')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if not osp.exists(args.img):
        raise FileNotFoundError(f'image or folder {args.img!r} not found')
    if not osp.isfile(args.weights):
        raise FileNotFoundError(f'checkpoint {args.weights!r} not found')

    from bombo.apis import PartialDetInferencer
    from bombo.utils.config import load_config

    cfg = load_config(args.config, args.cfg_options)
    inferencer = PartialDetInferencer(model=cfg, weights=args.weights,
                                      device=args.device,
                                      palette=args.palette)
    result = inferencer(args.img, batch_size=args.batch_size,
                        pred_score_thr=args.pred_score_thr,
                        out_dir=args.out_dir, show=args.show,
                        no_save_vis=args.no_save_vis,
                        no_save_pred=args.no_save_pred,
                        print_result=args.print_result)
    written = [what for what, off in (('vis/', args.no_save_vis),
                                      ('preds/', args.no_save_pred))
               if not off]
    if written:
        print(f'results written to {", ".join(written)} under '
              f'{args.out_dir}')
    return result


if __name__ == '__main__':
    main()
