# Table 4 "+ L_object" (swin-b_pafpn, coco): BoMBo paper, Sec. 3.3: L_S, L_alpha
# and the object triplet loss (Eq. 4) against the memory bank.
_base_ = './seg_att_swin-b_pafpn_coco.py'
model = dict(b4m=dict(use_object=True))
