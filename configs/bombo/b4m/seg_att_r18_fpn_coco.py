# Table 4 "+ L_alpha" (r18_fpn, coco): BoMBo paper, Sec. 3.3: L_S and the
# attention loss (Eq. 3) on the box-shaped masks.
_base_ = './seg_r18_fpn_coco.py'
model = dict(seg_head=dict(with_attention=True),
             b4m=dict(use_attention=True))
