# Table 4 "+ L_object" (r18_fpn, voc): BoMBo paper, Sec. 3.3: L_S, L_alpha
# and the object triplet loss (Eq. 4) against the memory bank.
_base_ = './seg_att_r18_fpn_voc.py'
model = dict(b4m=dict(use_object=True))
