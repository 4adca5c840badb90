#!/usr/bin/env python
"""Write one config per row of the BoMBo paper's Tables 1, 3, 4 and 5.

    python tools/misc/generate_paper_configs.py   # rewrites configs/bombo/

Rows (per backbone and dataset, VOC and COCO):

* ``mtl_*``                      baseline (Tables 1/3/4/5 "Baseline"/"MTL")
* ``m4b/maskbox_{c,l,lc}_*``     Table 1 "GT Masks": circumscribed rectangles
* ``m4b/refined_{c,l,lc}_*``     Table 1 "M4B Refined", EMA teacher
* ``m4b/uteacher_ema_*``         Table 3 "U-Teacher, EMA"
* ``m4b/uteacher_pretrained_*``  Table 3 "U-Teacher, pre-trained"
* ``m4b/refined_pretrained_*``   Table 3 "M4B Refined, pre-trained"
* ``b4m/seg_*``                  Table 4 "+ L_S"
* ``b4m/seg_att_*``              Table 4 "+ L_alpha" (L_S + L_alpha)
* ``b4m/seg_att_object_*``       Table 4 "+ L_object" (all three)
* ``bombo_*``                    Table 5 "+ BoMBo": M4B (L) + B4M, λ = 2

The pre-trained teacher rows read the baseline's final checkpoint from
``work_dirs/mtl_<backbone>_<dataset>/``: train the baseline first.

Every row is written for the paper's batch layout, 1×(32+32): one process, 32
detection + 32 segmentation images per step. ``auto_scale_lr`` (base 64) and
the schedule come from ``configs/_base_/schedules/sgd_70e{,_coco}.py``, which
every template inherits, so regenerating keeps them; on N processes train
with ``tools/train.py --auto-scale-lr --scale-schedule``
(docs/training_at_scale.md). ``tests/test_configs.py`` checks that this
script's output equals the committed configs.
"""
import os
import os.path as osp

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..')
OUT = osp.join(ROOT, 'configs', 'bombo')
DATASETS = dict(voc=dict(num_classes=20, max_iters=16800, val=2400,
                         data_root='data/VOCdevkit/'),
                coco=dict(num_classes=80, max_iters=32060, val=4580,
                          data_root='data/coco/'))  # as in
# configs/_base_/schedules/sgd_70e{,_coco}.py
M4B_BACKBONES = ('r18_fpn', 'r50_pafpn', 'swin-t_pafpn', 'swin-b_pafpn')
B4M_BACKBONES = M4B_BACKBONES + ('swin-l_pafpn', )
MATL_ROWS = (('r18_fpn', 'voc'), ('r18_fpn', 'coco'), ('r50_pafpn', 'voc'))

# every row evaluates the EMA of the weights, as the reference does (decay
# 0.9998 * (1 - exp(-updates / 2000))); it is also the M4B / B4M teacher
# when model.teacher=dict(type='ema')
HOOKS = """default_hooks = dict(checkpoint=dict(by_epoch=False, interval={val}))
custom_hooks = [
    dict(type='TeacherEMAHook', momentum=0.0002, gamma=2000),
    dict(type='SafeCheckpointHook', priority='VERY_LOW')
]
"""


def schedule(ds):
    return 'sgd_70e.py' if ds == 'voc' else 'sgd_70e_coco.py'


def baseline(bb, ds):
    name = {'voc': 'VOC07+12 half detection / half segmentation',
            'coco': 'COCO 1/8 detection + 1/8 segmentation'}[ds]
    n = DATASETS[ds]['num_classes']
    return f"""# Multi-task partially supervised baseline (BoMBo paper, Tables 1/3/4/5
# "Baseline" / "MTL"), {bb}, {name}.
_base_ = [
    '../_base_/models/mtl_{bb}.py', '../_base_/datasets/{ds}_partial.py',
    '../_base_/schedules/{schedule(ds)}', '../_base_/default_runtime.py'
]
num_classes = {n}  # one place: tools propagate it to every head
base_num_classes = num_classes  # the value written below
model = dict(bbox_head=dict(num_classes={n}), seg_head=dict(num_classes={n}))
""" + HOOKS.format(val=DATASETS[ds]['val'])


def m4b(bb, ds, row, mode, loss_mode, teacher):
    n = DATASETS[ds]['num_classes']
    teacher_cfg = "dict(type='ema')"
    if teacher == 'pretrained':
        ckpt = (f"work_dirs/mtl_{bb}_{ds}/"
                f"iter_{DATASETS[ds]['max_iters']}.pth")
        teacher_cfg = f"dict(type='pretrained', checkpoint='{ckpt}')"
    elif mode == 'mask_boxes':
        teacher_cfg = None
    lines = [f'# {row} ({bb}, {ds}): BoMBo paper, Sec. 3.2.',
             f"_base_ = '../mtl_{bb}_{ds}.py'", 'model = dict(',
             '    m4b=dict(',
             "        type='MaskForBoxBranch',",
             f"        refiner=dict(type='MaskForBoxRefiner', mode='{mode}',"
             f' num_classes={n}),',
             f"        loss_mode='{loss_mode}'),"]
    if teacher_cfg:
        lines.append(f'    teacher={teacher_cfg},')
    lines.append(')')
    if teacher == 'pretrained':
        lines.insert(1, '# the teacher is the trained baseline: train '
                     f'configs/bombo/mtl_{bb}_{ds}.py first\n'
                     '# (on N processes with --scale-schedule it ends at '
                     f'iter_<{DATASETS[ds]["max_iters"]} / N>.pth: set\n'
                     '# model.teacher.checkpoint to it)')
    return '\n'.join(lines) + '\n'


def b4m_seg(bb, ds):
    """Table 4 "+ L_S": the full config the other B4M rows inherit."""
    n = DATASETS[ds]['num_classes']
    return f"""# Table 4 "+ L_S" ({bb}, {ds}): BoMBo paper, Sec. 3.3: cross-entropy
# on the GrabCut pseudo-masks of the detection-annotated images.
# Make the pseudo-mask cache once before training:
#   python tools/make_pseudo_masks.py configs/bombo/b4m/seg_{bb}_{ds}.py --workers 8
# (one cache per dataset, shared by every B4M / BoMBo config of it)
_base_ = [
    '../../_base_/models/mtl_{bb}.py',
    '../../_base_/datasets/{ds}_partial_b4m.py',
    '../../_base_/schedules/{schedule(ds)}',
    '../../_base_/default_runtime.py'
]
num_classes = {n}  # one place: tools propagate it to every head
base_num_classes = num_classes  # the value written below
model = dict(
    bbox_head=dict(num_classes={n}),
    seg_head=dict(num_classes={n}),
    b4m=dict(type='BoxForMaskBranch', num_classes={n}, feat_dim=128,
             use_seg=True, use_attention=False, use_object=False,
             bank_size=64),
    teacher=dict(type='ema'))
""" + HOOKS.format(val=DATASETS[ds]['val'])


def b4m_att(bb, ds):
    return f"""# Table 4 "+ L_alpha" ({bb}, {ds}): BoMBo paper, Sec. 3.3: L_S and the
# attention loss (Eq. 3) on the box-shaped masks.
_base_ = './seg_{bb}_{ds}.py'
model = dict(seg_head=dict(with_attention=True),
             b4m=dict(use_attention=True))
"""


def b4m_object(bb, ds):
    return f"""# Table 4 "+ L_object" ({bb}, {ds}): BoMBo paper, Sec. 3.3: L_S, L_alpha
# and the object triplet loss (Eq. 4) against the memory bank.
_base_ = './seg_att_{bb}_{ds}.py'
model = dict(b4m=dict(use_object=True))
"""


def bombo(bb, ds):
    n = DATASETS[ds]['num_classes']
    return f"""# Table 5 "+ BoMBo" ({bb}, {ds}): BoMBo paper, Sec. 4.4: Mask-for-Box
# (refined, L, EMA teacher) and Box-for-Mask (all three losses), lambda = 2.
# Make the pseudo-mask cache once before training:
#   python tools/make_pseudo_masks.py configs/bombo/bombo_{bb}_{ds}.py --workers 8
_base_ = './b4m/seg_att_object_{bb}_{ds}.py'
model = dict(
    seg_weight=2.0,  # lambda of Eq. 1
    m4b=dict(
        type='MaskForBoxBranch',
        refiner=dict(type='MaskForBoxRefiner', mode='m4b', num_classes={n}),
        loss_mode='L'))
"""


def matl(bb, ds):
    """Multi-task baseline + the MATL embedding head (MATL paper)."""
    root = DATASETS[ds]['data_root']
    fit = (f"#   python tools/fit_box_labels.py --voc-root {root}VOC2007 "
           f"{root}VOC2012 \\\n#       --split Partial/det_train "
           if ds == 'voc' else
           f"#   python tools/fit_box_labels.py --ann-file "
           f"{root}annotations/partial/det_train.json \\\n#       ")
    return f"""# Multi-task baseline ({bb}, {ds}) + the MATL embedding head (Lee et
# al., MATL) on the detection levels P3-P7. Fit the box labels once on the
# detection-training split first:
{fit}--out {root}box_labels.json --elbow {root}box_labels_elbow.png
# TG-MATL: loss=dict(type='TGMATLLoss', box_weight=0.5, top_percent=0.3,
#                    random_percent=0.1, loss_weight=0.5)
# DAAL:    loss=dict(type='DAALLoss', margin=0.5, loss_weight=0.5)
_base_ = './mtl_{bb}_{ds}.py'
model = dict(
    embed_head=dict(
        type='MATLEmbeddingHead',
        in_channels=256,
        featmap_strides=[8, 16, 32, 64, 128],  # = det_levels (1, ..., 5)
        conv_channels=128,
        fc_channels=256,
        embed_dims=128,
        box_labels_file='{root}box_labels.json',
        max_boxes=1024,
        loss=dict(type='MATLLoss', box_weight=0.25, margin=0.1,
                  loss_weight=0.5)))
"""


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(
        description='Rewrite configs/bombo/ (one config per row of the '
        'BoMBo paper\'s Tables 1, 3, 4 and 5, plus the MATL rows) from the '
        'templates in this file.')
    parser.add_argument('--out', default=OUT,
                        help='output folder (default: %(default)s)')
    parser.add_argument('--dry-run', action='store_true',
                        help='list the files that would be written, write '
                        'nothing')
    args = parser.parse_args(argv)
    out = args.out
    files = build_files()
    if args.dry_run:
        print('\n'.join(sorted(files)))
        return
    os.makedirs(osp.join(out, 'm4b'), exist_ok=True)
    os.makedirs(osp.join(out, 'b4m'), exist_ok=True)
    for name, text in files.items():
        with open(osp.join(out, name), 'w') as f:
            f.write(text)
    print(f'wrote {len(files)} configs under {out}')


def build_files():
    """``{relative path: text}`` of every generated config."""
    files = {}
    for ds in DATASETS:
        for bb in B4M_BACKBONES:
            files[f'mtl_{bb}_{ds}.py'] = baseline(bb, ds)
            files[f'bombo_{bb}_{ds}.py'] = bombo(bb, ds)
            files[f'b4m/seg_{bb}_{ds}.py'] = b4m_seg(bb, ds)
            files[f'b4m/seg_att_{bb}_{ds}.py'] = b4m_att(bb, ds)
            files[f'b4m/seg_att_object_{bb}_{ds}.py'] = b4m_object(bb, ds)
        for bb in M4B_BACKBONES:
            for lm in ('C', 'L', 'LC'):
                files[f'm4b/maskbox_{lm.lower()}_{bb}_{ds}.py'] = m4b(
                    bb, ds, f'Table 1 "GT Masks", {lm}', 'mask_boxes', lm,
                    None)
                files[f'm4b/refined_{lm.lower()}_{bb}_{ds}.py'] = m4b(
                    bb, ds, f'Table 1 "M4B Refined", {lm}', 'm4b', lm, 'ema')
            files[f'm4b/uteacher_ema_{bb}_{ds}.py'] = m4b(
                bb, ds, 'Table 3 "U-Teacher", EMA', 'unbiased_teacher', 'L',
                'ema')
            files[f'm4b/uteacher_pretrained_{bb}_{ds}.py'] = m4b(
                bb, ds, 'Table 3 "U-Teacher", pre-trained',
                'unbiased_teacher', 'L', 'pretrained')
            files[f'm4b/refined_pretrained_{bb}_{ds}.py'] = m4b(
                bb, ds, 'Table 3 "M4B Refined", pre-trained', 'm4b', 'L',
                'pretrained')
    for bb, ds in MATL_ROWS:
        files[f'matl_{bb}_{ds}.py'] = matl(bb, ds)
    return files


if __name__ == '__main__':
    main()
