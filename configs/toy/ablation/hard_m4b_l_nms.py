# Ablation on the hard toy preset (see hard_mtl.py), row "M4B L with the
# teacher's post-NMS detections as Algorithm 1's input (the measurement of
# docs/mask_for_box.md)". Inherits the hard preset from hard_m4b_l.py.
_base_ = './hard_m4b_l.py'
model = dict(m4b=dict(teacher_boxes='nms'))
