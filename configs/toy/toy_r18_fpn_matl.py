# The toy demo with the MATL embedding head (paper 000): box embeddings pooled
# from the detection levels (P3-P6) inside ground-truth boxes, MATL on class
# labels and K-means box labels, added to the detection losses.
# Fit the box labels once first:
#   python tools/fit_box_labels.py \
#       --ann-file data/toy/annotations/det_train.json \
#       --out data/toy/box_labels.json --elbow data/toy/box_labels_elbow.png
_base_ = './toy_r18_fpn_mtl.py'
model = dict(
    embed_head=dict(
        type='MATLEmbeddingHead',
        in_channels=64,
        featmap_strides=[8, 16, 32, 64],  # = det_levels (1, 2, 3, 4)
        conv_channels=64,
        fc_channels=128,
        embed_dims=64,
        box_labels_file='data/toy/box_labels.json',
        loss=dict(type='MATLLoss', box_weight=0.25, margin=0.1,
                  loss_weight=0.5)))
