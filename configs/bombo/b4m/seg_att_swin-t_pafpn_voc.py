# Table 4 "+ L_alpha" (swin-t_pafpn, voc): BoMBo paper, Sec. 3.3: L_S and the
# attention loss (Eq. 3) on the box-shaped masks.
_base_ = './seg_swin-t_pafpn_voc.py'
model = dict(seg_head=dict(with_attention=True),
             b4m=dict(use_attention=True))
