# ResNet-50 + PAFPN variant of the multi-task detector (the paper uses PAFPN
# for every backbone but ResNet-18).
_base_ = './mtl_r18_fpn.py'
model = dict(
    backbone=dict(
        depth=50,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet50')),
    neck=dict(
        _delete_=True,
        type='PAFPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        start_level=0,
        add_extra_convs='on_input',
        num_outs=6))
