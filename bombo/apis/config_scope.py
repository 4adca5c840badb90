"""``bombo::`` config paths, as ``mmdet::`` ones.

A config of your own, anywhere, can start from a config that bombo ships::

    _base_ = 'bombo::bombo/bombo_r18_fpn_voc.py'   # = configs/bombo/...
    data_root = '/data/voc/'

mmengine's ``Config.fromfile`` resolves ``<scope>::<path>`` for the packages
of ``mmengine.config.utils.MODULE2PACKAGE`` only, reads the file from
``<installed package>/.mim/configs/<path>`` (after looking the name up in
``.mim/model-index.yml``), and builds every top-level dict of such a base in
the registries of scope ``<scope>``. :func:`register_config_scope` (run when
``bombo`` is imported) makes each step work for bombo:

* ``'bombo'`` joins ``MODULE2PACKAGE``;
* the wheel carries ``bombo/.mim/configs`` and ``bombo/.mim/model-index.yml``
  (setup.py); in a checkout ``bombo/.mim/configs`` is a symlink to
  ``configs/``;
* a registry tree of scope ``bombo``: one child of every mmdet registry, with
  nothing registered in it (bombo's modules live in mmdet's registries), so
  that a lookup falls through to mmdet's registries and then mmengine's;
  mmengine imports ``bombo.registry`` when it switches to the scope, which
  re-exports them;
* mmengine finds the installed package with ``pkg_resources``, which for an
  editable install (``pip install -e .``) names ``site-packages/bombo``, a
  folder that does not exist: the ``bombo`` lookup of
  ``mmengine.config.config`` returns the imported package's folder instead.

bombo must be imported before the config is parsed (bombo's tools do it;
in a script, ``import bombo`` first): ``custom_imports`` only runs after.
"""
import os.path as osp

import mmdet.registry as mmdet_registry
from mmengine.config import config as mmengine_config
from mmengine.config import utils as mmengine_config_utils
from mmengine.registry import Registry

SCOPE = 'bombo'
#: the folder of the imported ``bombo`` package
PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def config_dir() -> str:
    """The folder of the configs bombo ships (``<bombo>/.mim/configs``)."""
    return osp.join(PACKAGE_DIR, '.mim', 'configs')


def _child(registry: Registry) -> Registry:
    # locations: what mmengine imports before a lookup in this registry
    # (a lookup falls through to the parent's dict without importing the
    # parent's locations)
    return registry._children.get(SCOPE) or Registry(
        registry.name, parent=registry, scope=SCOPE,
        locations=['bombo'] + list(registry._locations))


#: the ``bombo`` children of mmdet's registries, under mmdet's names
REGISTRIES = {
    name: _child(obj) for name, obj in vars(mmdet_registry).items()
    if isinstance(obj, Registry)
}
globals().update(REGISTRIES)


def _installed_path(package: str, _find=mmengine_config.get_installed_path):
    if package == SCOPE:
        return PACKAGE_DIR
    return _find(package)


def register_config_scope() -> None:
    """Make ``bombo::`` bases resolve (see the module docstring);
    idempotent."""
    mmengine_config_utils.MODULE2PACKAGE.setdefault(SCOPE, 'bombo')
    if mmengine_config.get_installed_path is not _installed_path:
        mmengine_config.get_installed_path = _installed_path


register_config_scope()
