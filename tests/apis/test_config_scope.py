"""``_base_ = 'bombo::<path>'`` in a config of one's own: resolved from
``bombo/.mim/configs`` and built in the ``bombo`` registry scope (here in
the editable checkout; tests/apis/test_packaging.py: from the wheel)."""
import os.path as osp

from mmengine.config import Config
from mmengine.registry import DATASETS, HOOKS, MODELS, VISUALIZERS

from bombo.apis import config_dir
from bombo.utils.config import load_config
from conftest import ROOT

USER_CONFIG = """_base_ = 'bombo::toy/toy_r18_fpn_mtl.py'
train_cfg = dict(max_iters=2)
visualizer = dict(type='PartialDetLocalVisualizer', name='scope_test')
"""


def test_shipped_configs_are_the_checkout_configs():
    assert osp.realpath(config_dir()) == osp.realpath(osp.join(ROOT,
                                                               'configs'))
    assert osp.isfile(osp.join(osp.dirname(config_dir()), 'model-index.yml'))


def test_a_user_config_extends_a_shipped_one(tmp_path, toy_root, capfd):
    path = tmp_path / 'my_config.py'
    path.write_text(USER_CONFIG)
    cfg = load_config(str(path), {'data_root': toy_root.rstrip('/') + '/'})
    shipped = osp.join(config_dir(), 'toy', 'toy_r18_fpn_mtl.py')
    assert shipped in cfg.text  # the base was read from bombo/.mim
    assert cfg.train_cfg.max_iters == 2 and cfg.train_cfg.val_interval == \
        Config.fromfile(shipped).train_cfg.val_interval
    assert cfg.model._scope_ == 'bombo'

    # what the Runner does: build from mmengine's root registries, in
    # scope bombo (mmdet's and bombo's modules are found through mmdet's)
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'PartialMultiTaskDetector'
    assert type(VISUALIZERS.build(cfg.visualizer)).__name__ == \
        'PartialDetLocalVisualizer'
    hook = HOOKS.build(cfg.default_hooks.visualization)
    assert type(hook).__name__ == 'DetVisualizationHook'
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(dataset) == 4 and dataset[0]['data_samples'].gt_sem_seg
    logged = capfd.readouterr()
    assert 'Failed to' not in logged.out + logged.err
