# Ablation on the DEFAULT toy preset (data/toy), diagnostic row "B4M L_S +
# L_alpha + L_object with the student's keys": the memory-bank keys of Eq. 4
# are the student's own (detached) z of the segmentation-annotated images
# instead of the EMA teacher's (b4m.teacher_keys=False), to tell whether
# L_object's effect on mIoU comes from the teacher's keys (docs/evidence.md
# §5). Inherits the 800-iteration schedule from toy_b4m_full_800it.py.
_base_ = './toy_b4m_full_800it.py'
model = dict(b4m=dict(teacher_keys=False))
