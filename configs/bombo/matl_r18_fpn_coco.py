# Multi-task baseline (r18_fpn, coco) + the MATL embedding head (Lee et
# al., MATL) on the detection levels P3-P7. Fit the box labels once on the
# detection-training split first:
#   python tools/fit_box_labels.py --ann-file data/coco/annotations/partial/det_train.json \
#       --out data/coco/box_labels.json --elbow data/coco/box_labels_elbow.png
# TG-MATL: loss=dict(type='TGMATLLoss', box_weight=0.5, top_percent=0.3,
#                    random_percent=0.1, loss_weight=0.5)
# DAAL:    loss=dict(type='DAALLoss', margin=0.5, loss_weight=0.5)
_base_ = './mtl_r18_fpn_coco.py'
model = dict(
    embed_head=dict(
        type='MATLEmbeddingHead',
        in_channels=256,
        featmap_strides=[8, 16, 32, 64, 128],  # = det_levels (1, ..., 5)
        conv_channels=128,
        fc_channels=256,
        embed_dims=128,
        box_labels_file='data/coco/box_labels.json',
        max_boxes=1024,
        loss=dict(type='MATLLoss', box_weight=0.25, margin=0.1,
                  loss_weight=0.5)))
