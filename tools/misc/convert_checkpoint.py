#!/usr/bin/env python
"""Convert a trusted mmengine / mmdet checkpoint into one that loads with
``torch.load(weights_only=True)``, as bombo loads every checkpoint.

    python tools/misc/convert_checkpoint.py IN.pth OUT.pth [--state-dict-only]

Checkpoints of a plain mmengine / mmdet run hold mmengine's
``HistoryBuffer`` objects and numpy arrays, scalars and dtypes, which
torch's weights-only loader refuses (``UnpicklingError``). This tool
unpickles IN fully (``weights_only=False``), turns those objects into
tensors and plain Python values (``HistoryBuffer`` as bombo's
``SafeCheckpointHook`` stores them, so the result still resumes), drops
what cannot be made plain (and lists it), writes OUT through a temporary
file and a rename, and checks that OUT loads weights-only with the same
state-dict tensors.

WARNING: unpickling IN can run arbitrary code. Convert only checkpoints you
trust (your own runs, official model zoos).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0] + ' WARNING: IN is unpickled '
        'with weights_only=False, which can run arbitrary code: convert '
        'TRUSTED files only.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('src', metavar='IN',
                        help='the trusted checkpoint to convert')
    parser.add_argument('dst', metavar='OUT',
                        help='where to write the converted checkpoint')
    parser.add_argument('--state-dict-only', action='store_true',
                        help="keep only 'state_dict' and 'meta' (no "
                        'optimizer, schedulers, message hub): enough to '
                        'test, infer or serve as a pre-trained teacher, '
                        'not to resume')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace OUT if it exists')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from bombo.engine.checkpoint_io import convert_checkpoint
    report = convert_checkpoint(args.src, args.dst,
                                state_dict_only=args.state_dict_only,
                                overwrite=args.overwrite)
    if report['already_safe']:
        print(f'note: {args.src} already loaded with weights_only=True')
    for path, kind in report['dropped']:
        print(f'dropped {path} ({kind}): not a tensor or plain value')
    print(f'wrote {args.dst}: keys {report["keys"]}, {report["tensors"]} '
          'state-dict tensors, identical to the original; loads with '
          'torch.load(weights_only=True)')
    return report


if __name__ == '__main__':
    main()
