"""The EMA teacher of the pseudo-label branches."""
from mmdet.registry import HOOKS
from mmengine.hooks import EMAHook
from mmengine.model import is_model_wrapper

from .foreach_ema import ForeachExpMomentumEMA  # noqa: F401 (registered)


@HOOKS.register_module()
class TeacherEMAHook(EMAHook):
    """mmengine's ``EMAHook`` whose EMA model is also the detector's teacher.

    As in the BoMBo reference implementation, one exponential moving average
    of the student is both the evaluated model (``EMAHook`` swaps its weights
    in for validation and saves them in the checkpoint) and the teacher of
    Mask-for-Box / Box-for-Mask. The default, mmdet's ``ExpMomentumEMA``
    decay with ``momentum=0.0002, gamma=2000``, is the reference's decay
    ``0.9998 * (1 - exp(-updates / 2000))``; it is computed by
    :class:`~bombo.engine.foreach_ema.ForeachExpMomentumEMA`, the same
    values (bit-identical, same state dict) with multi-tensor updates
    (``benchmarks/bench_ema.py``). ``ema_type='ExpMomentumEMA'`` selects
    mmdet's per-tensor loop.

    A model whose ``teacher`` is ``dict(type='pretrained', ...)`` keeps its
    pre-trained teacher; the EMA is then only evaluated.

    Args:
        ema_type (str): averaged-model type. Default
            ``'ForeachExpMomentumEMA'``.
        momentum (float): EMA momentum (1 - decay). Default 0.0002.
        gamma (float): warm-up of the momentum (ExpMomentumEMA). Default 2000.
        **kwargs: other ``EMAHook`` / averaged-model arguments.
    """

    priority = 'NORMAL'

    def __init__(self, ema_type: str = 'ForeachExpMomentumEMA',
                 momentum: float = 0.0002, gamma: float = 2000, **kwargs):
        if ema_type in ('ExpMomentumEMA', 'ForeachExpMomentumEMA'):
            kwargs['gamma'] = gamma
        super().__init__(ema_type=ema_type, momentum=momentum, **kwargs)

    def before_run(self, runner) -> None:
        super().before_run(runner)
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        if not hasattr(model, 'set_teacher'):
            raise TypeError(f'TeacherEMAHook needs a model with set_teacher '
                            f'(PartialMultiTaskDetector), got '
                            f'{type(model).__name__}')
        if model.teacher_cfg.get('type', 'ema') == 'ema':
            model.set_teacher(self.ema_model.module)
