"""One ``data_root``, one class list: config values that reach every copy.

mmengine evaluates a Python config when it is parsed: a base file that writes
``data_root + 'VOC2007/'`` into a dataset dict leaves a *copy* of the string
there, so ``--cfg-options data_root=...`` (or a derived config that sets
``data_root = ...``) changes the top-level variable only, and every dataset,
evaluator and cache directory keeps the old path. The same holds for
``num_classes`` (bbox head, semantic head, Mask-for-Box refiner, Box-for-Mask
branch) and for the class list (``metainfo``) of every dataset.

:func:`resolve_config` makes the top-level values win. Base files that build
dicts from a value also record the value they used (a *marker*):

* ``base_data_root`` (a path, or a list of them when a derived config builds
  dicts of its own on top of a base's): every string of the config that
  starts with it (dataset roots, annotation files, evaluator ``ann_file``,
  ``pseudo_mask_dir``, box label files) is re-rooted at ``data_root``;
* ``base_num_classes``: every ``num_classes`` under ``model`` that still holds
  the marker's value takes the top-level ``num_classes``;
* ``base_metainfo``: every dataset whose ``metainfo`` still equals the marker
  takes the top-level ``metainfo``; a class list given there also sets
  ``num_classes = len(classes)``.

Then the model is checked: every ``num_classes`` under ``model`` must agree,
and with the number of classes of every dataset (a clear ``ValueError``
otherwise, instead of a ``Target 100 is out of bounds`` at iteration 1).

Required hooks (:func:`ensure_required_hooks`): a derived config that sets
``custom_hooks = [...]`` replaces the base's list (mmengine merges lists by
replacing them), which silently dropped the hooks bombo needs:

* ``SafeCheckpointHook`` (checkpoints that load with ``weights_only=True``)
  is appended when no custom hook has that type;
* ``TeacherEMAHook`` when the model has a Mask-for-Box or Box-for-Mask branch
  (``model.m4b`` / ``model.b4m``) and an EMA teacher (``model.teacher`` of
  type ``'ema'``, or none: the default): a plain mmengine ``EMAHook`` (which
  cannot give the detector its teacher) becomes a ``TeacherEMAHook`` with the
  same arguments; with no EMA hook at all one is appended with the paper's
  defaults (``momentum=0.0002, gamma=2000``).

Each addition or replacement is logged; a hook already present is never added
again, so resolving a config twice changes nothing.

Every bombo tool that reads a config calls :func:`load_config`; a config used
by mmdet's own tools works unchanged as long as it is not overridden.
"""
import copy
import logging
from typing import Any, Iterator, List, Optional, Tuple

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

#: top-level names of the markers (see the module docstring)
MARKERS = ('base_data_root', 'base_num_classes', 'base_metainfo')


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """``Config.fromfile`` + ``--cfg-options`` + :func:`resolve_config`."""
    cfg = Config.fromfile(path)
    return resolve_config(cfg, cfg_options)


def _rerooted(value: str, old: str, new: str) -> Optional[str]:
    if not old or not value.startswith(old):
        return None
    rest = value[len(old):]
    if not old.endswith('/') and rest and not rest.startswith('/'):
        return None  # 'data/coco' must not re-root 'data/coco2'
    if new.endswith('/') and rest.startswith('/'):
        rest = rest[1:]
    elif rest and not new.endswith('/') and old.endswith('/'):
        rest = '/' + rest
    return new + rest


def _replace_strings(obj: Any, old: str, new: str) -> Any:
    if isinstance(obj, str):
        out = _rerooted(obj, old, new)
        return obj if out is None else out
    if isinstance(obj, dict):
        for k in list(obj.keys()):
            obj[k] = _replace_strings(obj[k], old, new)
        return obj
    if isinstance(obj, list):
        return [_replace_strings(v, old, new) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_replace_strings(v, old, new) for v in obj)
    return obj


def _walk_dicts(obj: Any, path: str = '') -> Iterator[Tuple[str, dict]]:
    if isinstance(obj, dict):
        yield path, obj
        for k, v in obj.items():
            yield from _walk_dicts(v, f'{path}.{k}' if path else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _walk_dicts(v, f'{path}.{i}')


def iter_datasets(cfg: Config) -> Iterator[Tuple[str, dict]]:
    """``(path, dict)`` of every leaf dataset config (one with an
    ``ann_file``) of the train / val / test dataloaders."""
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(loader) is None:
            continue
        for path, d in _walk_dicts(cfg[loader].get('dataset'),
                                   f'{loader}.dataset'):
            if 'type' in d and 'ann_file' in d:
                yield path, d


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def resolve_config(cfg: Config, cfg_options: Optional[dict] = None
                   ) -> Config:
    """Merge ``cfg_options`` into ``cfg`` and propagate the top-level
    ``data_root``, ``num_classes`` and ``metainfo`` (in place; returned)."""
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    _resolve_data_root(cfg)
    _resolve_metainfo(cfg, (cfg_options or {}).get('num_classes'))
    _resolve_num_classes(cfg)
    check_num_classes(cfg)
    ensure_required_hooks(cfg)
    return cfg


#: the EMA teacher hook appended when a branch needs it and none is listed
TEACHER_HOOK = dict(type='TeacherEMAHook', momentum=0.0002, gamma=2000)
SAFE_HOOK = dict(type='SafeCheckpointHook', priority='VERY_LOW')


def _hook_name(hook) -> str:
    t = hook.get('type') if isinstance(hook, dict) else type(hook)
    return t.__name__ if isinstance(t, type) else str(t).rpartition('.')[2]


def needs_ema_teacher(model: Optional[dict]) -> bool:
    """Whether a model config has a pseudo-label branch (``m4b`` / ``b4m``)
    whose teacher is the EMA of ``TeacherEMAHook``."""
    if not isinstance(model, dict):
        return False
    teacher = model.get('teacher') or {}
    return bool(model.get('m4b') or model.get('b4m')) and \
        teacher.get('type', 'ema') == 'ema'


def ensure_required_hooks(cfg: Config) -> List[str]:
    """Add the hooks a derived config's ``custom_hooks`` dropped (see the
    module docstring); returns the messages logged (empty: nothing done).

    Only configs with a ``model`` in mmdet's (or bombo's) default scope are
    touched: bombo's hooks live in mmdet's registry.
    """
    if not isinstance(cfg.get('model'), dict) or \
            cfg.get('default_scope', 'mmdet') not in ('mmdet', 'bombo'):
        return []
    hooks = list(cfg.get('custom_hooks') or [])
    names = [_hook_name(h) for h in hooks]
    done = []
    if needs_ema_teacher(cfg.model) and 'TeacherEMAHook' not in names:
        if 'EMAHook' in names:
            i = names.index('EMAHook')
            hooks[i] = dict(hooks[i], type='TeacherEMAHook')
            names[i] = 'TeacherEMAHook'
            done.append('custom_hooks: EMAHook replaced by TeacherEMAHook '
                        '(same arguments): the Mask-for-Box / Box-for-Mask '
                        'branch reads its EMA teacher from it')
        else:
            hooks.append(copy.deepcopy(TEACHER_HOOK))
            done.append(f'custom_hooks: {TEACHER_HOOK} added: the '
                        'Mask-for-Box / Box-for-Mask branch needs the EMA '
                        'teacher (model.teacher type "ema")')
    if 'SafeCheckpointHook' not in names:
        hooks.append(copy.deepcopy(SAFE_HOOK))
        done.append('custom_hooks: SafeCheckpointHook added: checkpoints '
                    'stay loadable with torch.load(weights_only=True)')
    if done:
        cfg['custom_hooks'] = hooks
        for msg in done:
            print_log(msg, logger='current', level=logging.WARNING)
    return done


def _resolve_data_root(cfg: Config) -> None:
    new, olds = cfg.get('data_root'), cfg.get('base_data_root')
    if isinstance(olds, str):
        olds = [olds]
    if not isinstance(new, str) or not olds:
        return
    # a config that builds dicts from its own data_root on top of a base
    # lists both roots; the longest prefix is replaced first
    olds = sorted({o for o in olds if isinstance(o, str) and o != new},
                  key=len, reverse=True)
    keep = ('data_root', 'base_data_root', 'work_dir')
    for old in olds:
        for key in list(cfg.keys()):
            if key not in keep:
                cfg[key] = _replace_strings(cfg[key], old, new)
    cfg['base_data_root'] = new


def _resolve_metainfo(cfg: Config, asked_num_classes=None) -> None:
    if 'metainfo' not in cfg or cfg.metainfo is None:
        return
    new = _plain(cfg.metainfo)
    old = _plain(cfg.get('base_metainfo'))
    if new == old:
        return
    for _, d in iter_datasets(cfg):
        if _plain(d.get('metainfo')) == old:
            d['metainfo'] = copy.deepcopy(cfg.metainfo)
    cfg['base_metainfo'] = copy.deepcopy(cfg.metainfo)
    classes = new.get('classes') if isinstance(new, dict) else None
    if classes:
        n = len(classes)
        if asked_num_classes not in (None, n):
            raise ValueError(
                f'num_classes = {cfg.num_classes} but metainfo lists {n} '
                f'classes {tuple(classes)}: set one of them only')
        cfg['num_classes'] = n


def _model_num_classes(cfg: Config) -> List[Tuple[str, dict]]:
    return [(p, d) for p, d in _walk_dicts(cfg.get('model'), 'model')
            if 'num_classes' in d]


def _resolve_num_classes(cfg: Config) -> None:
    new, old = cfg.get('num_classes'), cfg.get('base_num_classes')
    if new is None or old is None or new == old:
        return
    for _, d in _model_num_classes(cfg):
        if d['num_classes'] == old:
            d['num_classes'] = new
    cfg['base_num_classes'] = new


def dataset_classes(ds_cfg: dict) -> Optional[tuple]:
    """The class names a dataset config will have (its ``metainfo`` or the
    registered class's ``METAINFO``), or None if unknown."""
    meta = ds_cfg.get('metainfo') or {}
    if meta.get('classes'):
        return tuple(meta['classes'])
    from mmdet.registry import DATASETS
    try:
        cls = DATASETS.get(ds_cfg['type'])
    except Exception:  # unknown scope / type: built later, checked there
        cls = None
    info = getattr(cls, 'METAINFO', None) or {}
    return tuple(info['classes']) if info.get('classes') else None


def check_num_classes(cfg: Config) -> None:
    """Every ``num_classes`` under ``model`` agrees, and with the datasets."""
    found = _model_num_classes(cfg)
    values = {d['num_classes'] for _, d in found}
    if len(values) > 1:
        where = ', '.join(f'{p}={d["num_classes"]}' for p, d in found)
        raise ValueError(
            f'the model has different num_classes ({where}). Set '
            '`num_classes = N` at the top level of the config (or '
            '--cfg-options num_classes=N): bombo propagates it to every head')
    if not values:
        return
    n = values.pop()
    for path, d in iter_datasets(cfg):
        classes = dataset_classes(d)
        if classes is not None and len(classes) != n:
            raise ValueError(
                f'{path} has {len(classes)} classes but the model '
                f'num_classes is {n}. Set `metainfo = dict(classes=(...))` '
                'at the top level of the config: bombo gives it to every '
                'dataset and sets num_classes from it')


__all__ = ['load_config', 'resolve_config', 'check_num_classes',
           'iter_datasets', 'dataset_classes', 'ensure_required_hooks',
           'needs_ema_teacher', 'MARKERS', 'ConfigDict']
