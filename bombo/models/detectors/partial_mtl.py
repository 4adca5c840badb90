"""The multi-task partially supervised detector (BoMBo paper, Sec. 3.1)."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.models.detectors import SingleStageDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from ..task_modules.teacher import eval_mode

DET_TASKS = ('det', 'both')
SEG_TASKS = ('seg', 'both')


def ann_task(sample) -> str:
    """The task a data sample is annotated for (``'both'`` if unset)."""
    return sample.metainfo.get('ann_task', 'both')


def zero_loss(module: torch.nn.Module) -> Tensor:
    """A zero that depends on every parameter of ``module``.

    Used when a batch holds no image of a task, so that the head still takes
    part in the graph (DDP requires every parameter to receive a gradient).
    """
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        return torch.zeros(())
    return sum(p.sum() for p in params) * 0.


@MODELS.register_module()
class PartialMultiTaskDetector(SingleStageDetector):
    """One network for detection and semantic segmentation trained on
    partially annotated images: each image is annotated for one task.

    backbone → neck (FPN/PAFPN) → a dense detection head on
    ``det_levels`` and a semantic head on ``seg_levels``. Every data sample
    carries ``metainfo['ann_task']`` in ``{'det', 'seg', 'both'}``. Following
    the paper (Sec. 3.1), the images of each task pass through the network as
    their own sub-batch ("fed with data annotated for one task after
    another"): detection losses are computed on detection-annotated images
    only, segmentation losses on segmentation-annotated images only, the
    gradients accumulate in the shared backbone and neck, and the optimiser
    steps once after both, which gives Eq. 1::

        L = (L_det + L_M4B) + λ (L_seg + L_B4M)

    with ``λ = seg_weight``. Separate sub-batches also keep batch-norm
    statistics per task as in the reference implementation; an image
    annotated for both tasks goes through both passes. ``L_M4B`` and
    ``L_B4M`` come from the optional ``m4b`` and ``b4m`` branches (none:
    the baseline).

    Inference returns, for every image, ``pred_instances`` (boxes) and
    ``pred_sem_seg`` (a label map at the original image size).

    Args:
        backbone, neck, bbox_head: as in mmdet's ``SingleStageDetector``.
        seg_head (dict): the semantic head (``SemanticFPNHead``).
        det_levels (Sequence[int], optional): neck outputs fed to the
            detection head (default: all).
        seg_levels (Sequence[int], optional): neck outputs fed to the
            semantic head, finest first (default: the first
            ``seg_head.num_levels``).
        seg_weight (float): λ of Eq. 1. The paper uses 2 for BoMBo.
        embed_head (dict, optional): an embedding head whose
            ``loss(x, samples)`` is added on detection-annotated images.
        m4b (dict, optional): the Mask-for-Box branch
            (``MaskForBoxBranch``), giving L_M4B on segmentation-annotated
            images.
        b4m (dict, optional): the Box-for-Mask branch
            (``BoxForMaskBranch``), giving L_B4M on detection-annotated
            images.
        teacher (dict, optional): where pseudo-labels come from.
            ``dict(type='ema')`` (default when a branch needs one): the EMA
            of the student kept by ``TeacherEMAHook`` (add it to
            ``custom_hooks``); ``dict(type='pretrained', checkpoint=PATH)``:
            a frozen copy of this model loaded from a checkpoint, strictly
            (:func:`load_teacher_checkpoint`: every weight of the backbone,
            neck and heads, nothing else, or an error naming the keys). The
            teacher sees the student's input images, without gradient.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 bbox_head: ConfigType,
                 seg_head: ConfigType,
                 det_levels: Optional[Sequence[int]] = None,
                 seg_levels: Optional[Sequence[int]] = None,
                 seg_weight: float = 1.0,
                 embed_head: OptConfigType = None,
                 m4b: OptConfigType = None,
                 b4m: OptConfigType = None,
                 teacher: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(backbone=backbone, neck=neck, bbox_head=bbox_head,
                         train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.seg_head = MODELS.build(seg_head)
        self.det_levels = None if det_levels is None else tuple(det_levels)
        self.seg_levels = tuple(seg_levels) if seg_levels is not None else \
            tuple(range(self.seg_head.num_levels))
        if seg_weight < 0:
            raise ValueError(f'seg_weight must be >= 0, got {seg_weight}')
        self.seg_weight = seg_weight
        self.embed_head = MODELS.build(embed_head) if embed_head else None
        self.m4b = MODELS.build(m4b) if m4b else None
        self.b4m = MODELS.build(b4m) if b4m else None
        teacher = dict(teacher or dict(type='ema'))
        if teacher.get('type') not in ('ema', 'pretrained'):
            raise ValueError("teacher type must be 'ema' or 'pretrained', "
                             f"got {teacher.get('type')!r}")
        if teacher['type'] == 'pretrained' and not teacher.get('checkpoint'):
            raise ValueError('a pretrained teacher needs a checkpoint path')
        self.teacher_cfg = teacher
        # the teacher is not a registered submodule: it is neither trained,
        # nor saved with the student, nor wrapped by DDP
        self.__dict__['_teacher'] = None

    # ------------------------------------------------------------------
    def set_teacher(self, teacher: torch.nn.Module) -> None:
        """Use ``teacher`` (e.g. the EMA model of ``TeacherEMAHook``)."""
        self.__dict__['_teacher'] = teacher

    def get_teacher(self) -> torch.nn.Module:
        """The teacher model, loading a pre-trained one on first use."""
        teacher = self.__dict__.get('_teacher')
        if teacher is None and self.teacher_cfg['type'] == 'pretrained':
            teacher = copy.deepcopy(self)
            teacher.__dict__['_teacher'] = None
            load_teacher_checkpoint(teacher, self.teacher_cfg['checkpoint'])
            teacher.requires_grad_(False).eval()
            self.set_teacher(teacher)
        if teacher is None:
            raise RuntimeError(
                'this model needs a teacher for its pseudo-labels: add '
                "dict(type='TeacherEMAHook') to custom_hooks, or set "
                "model.teacher=dict(type='pretrained', checkpoint=...)")
        device = next(self.parameters()).device
        if next(teacher.parameters()).device != device:
            teacher.to(device)
        return teacher

    def teacher_features(self, inputs: Tensor) -> Tuple[Tensor]:
        """The teacher's neck features of ``inputs`` (eval mode, no
        gradient), computed once per training step and shared by the M4B
        and B4M branches, which both look at the segmentation images."""
        cache = self.__dict__.setdefault('_teacher_cache', {})
        key = (inputs.data_ptr(), tuple(inputs.shape))
        if key not in cache:
            teacher = self.get_teacher()
            with eval_mode(teacher):
                cache[key] = teacher.extract_feat(inputs)
        return cache[key]

    def __deepcopy__(self, memo):
        # copies (EMA, pretrained teacher) never carry the teacher along
        cls = self.__class__
        new = cls.__new__(cls)
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            if k == '_teacher_cache':
                continue
            new.__dict__[k] = None if k == '_teacher' else \
                copy.deepcopy(v, memo)
        return new

    # ------------------------------------------------------------------
    def det_feats(self, x: Tuple[Tensor]) -> Tuple[Tensor]:
        if self.det_levels is None:
            return tuple(x)
        return tuple(x[i] for i in self.det_levels)

    def seg_feats(self, x: Tuple[Tensor]) -> Tuple[Tensor]:
        return tuple(x[i] for i in self.seg_levels)

    @staticmethod
    def split_by_task(batch_data_samples: SampleList
                      ) -> Tuple[List[int], List[int]]:
        """Indices of the detection- and segmentation-annotated samples."""
        det = [i for i, s in enumerate(batch_data_samples)
               if ann_task(s) in DET_TASKS]
        seg = [i for i, s in enumerate(batch_data_samples)
               if ann_task(s) in SEG_TASKS]
        unknown = {ann_task(s) for s in batch_data_samples} - {
            'det', 'seg', 'both'}
        if unknown:
            raise ValueError(f'unknown ann_task {sorted(unknown)} in batch')
        return det, seg

    # ------------------------------------------------------------------
    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        det_idx, seg_idx = self.split_by_task(batch_data_samples)
        losses: Dict[str, Tensor] = {}
        seg_weight = self.seg_weight

        # --- detection-annotated images: L_det (+ embedding) + λ L_B4M ---
        if det_idx:
            samples = [batch_data_samples[i] for i in det_idx]
            x = self.extract_feat(batch_inputs[det_idx])
            det_losses = self.bbox_head.loss(self.det_feats(x), samples)
            if self.embed_head is not None:
                det_losses.update(self.embed_head.loss(self.det_feats(x),
                                                       samples))
            losses.update(det_losses)
            for k, v in self.seg_pseudo_losses(x, batch_inputs[det_idx],
                                               samples).items():
                losses[k] = _scale(v, seg_weight) if 'loss' in k else v
        else:
            losses['loss_det_unused'] = zero_loss(self.bbox_head)

        # --- segmentation-annotated images: λ L_seg + L_M4B ---
        if seg_idx:
            samples = [batch_data_samples[i] for i in seg_idx]
            inputs = batch_inputs[seg_idx]
            x = self.extract_feat(inputs)
            outs = self.seg_head(self.seg_feats(x))
            losses['loss_seg'] = seg_weight * self.seg_head.loss_from_outputs(
                outs, samples)
            try:
                if self.b4m is not None:
                    # keys for Box-for-Mask's memory bank, from the teacher
                    self.b4m.update_bank(self, inputs, samples,
                                         student_feats=outs['feats'])
                losses.update(self.det_pseudo_losses(x, inputs, samples))
            finally:
                self.__dict__['_teacher_cache'] = {}
        else:
            losses['loss_seg'] = zero_loss(self.seg_head)
        return losses

    def det_pseudo_losses(self, x: Tuple[Tensor], inputs: Tensor,
                          samples: SampleList) -> Dict[str, Tensor]:
        """L_M4B: detection losses on segmentation-annotated images (the
        ``m4b`` branch; none for the baseline)."""
        if self.m4b is None:
            return {}
        return self.m4b.loss(self, x, inputs, samples)

    def seg_pseudo_losses(self, x: Tuple[Tensor], inputs: Tensor,
                          samples: SampleList) -> Dict[str, Tensor]:
        """L_B4M: segmentation losses on detection-annotated images, before
        the λ weighting (the ``b4m`` branch; none for the baseline)."""
        if self.b4m is None:
            return {}
        return self.b4m.loss(self, x, inputs, samples)

    # ------------------------------------------------------------------
    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        x = self.extract_feat(batch_inputs)
        results = self.bbox_head.predict(self.det_feats(x),
                                         batch_data_samples, rescale=rescale)
        batch_data_samples = self.add_pred_to_datasample(batch_data_samples,
                                                         results)
        seg = self.seg_head.predict(self.seg_feats(x), batch_data_samples,
                                    rescale=rescale)
        for sample, pred in zip(batch_data_samples, seg):
            sample.pred_sem_seg = pred
        return batch_data_samples

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: SampleList = None):
        x = self.extract_feat(batch_inputs)
        return (self.bbox_head.forward(self.det_feats(x)),
                self.seg_head(self.seg_feats(x))['seg_preds'])


#: parts of the model a pre-trained teacher runs; their weights must all be
#: in its checkpoint, and nothing else under these names
TEACHER_PARTS = ('backbone', 'neck', 'bbox_head', 'seg_head')
#: how many missing / unexpected keys an error names before a count
MAX_KEYS_LISTED = 20


def _listed(keys: List[str]) -> str:
    shown = ', '.join(keys[:MAX_KEYS_LISTED])
    more = len(keys) - MAX_KEYS_LISTED
    return shown + (f', ... (+{more} more)' if more > 0 else '')


def load_teacher_checkpoint(teacher: torch.nn.Module, path: str) -> None:
    """Load a pre-trained teacher's weights strictly.

    The checkpoint is read with torch's safe loader (``weights_only=True``,
    torch's default, through mmengine's ``CheckpointLoader``); its
    ``state_dict`` (or the file itself when it is a bare state dict; a
    ``module.`` prefix of DDP is stripped) must hold exactly the weights of
    the parts the teacher runs (:data:`TEACHER_PARTS`: backbone, neck,
    detection and semantic heads). Keys of other parts (the B4M memory
    bank, an embedding head) are neither required nor loaded: the teacher
    never runs them.

    Raises:
        RuntimeError: missing or unexpected keys, every one named (the
            first :data:`MAX_KEYS_LISTED` of each, then a count), with the
            path; or a checkpoint the safe loader refuses (pickled Python
            objects, e.g. numpy arrays of a plain mmengine/mmdet run), with
            the command that converts it.
    """
    import pickle

    from mmengine.runner import CheckpointLoader
    try:
        ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    except pickle.UnpicklingError as e:
        raise RuntimeError(
            f'the pre-trained teacher checkpoint {path} cannot be read with '
            "torch's safe loader (weights_only=True): it holds pickled "
            'Python objects (a checkpoint of a plain mmengine/mmdet run '
            'holds numpy arrays). Convert a checkpoint you trust once with '
            f'`python tools/misc/convert_checkpoint.py {path} OUT` and set '
            f'model.teacher.checkpoint=OUT. ({type(e).__name__}: '
            f'{str(e).splitlines()[0] if str(e) else ""})') from e
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise RuntimeError(f'the pre-trained teacher checkpoint {path} holds '
                           f'no state dict (got {type(ckpt).__name__})')
    state = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state.items()}

    def used(key: str) -> bool:
        return key.split('.', 1)[0] in TEACHER_PARTS

    expected = {k for k in teacher.state_dict() if used(k)}
    given = {k for k in state if used(k)}
    missing = sorted(expected - given)
    unexpected = sorted(given - expected)
    if missing or unexpected:
        raise RuntimeError(
            f'the pre-trained teacher checkpoint {path} does not match the '
            f'model ({", ".join(TEACHER_PARTS)}): '
            f'{len(missing)} missing key(s): {_listed(missing) or "-"}; '
            f'{len(unexpected)} unexpected key(s): '
            f'{_listed(unexpected) or "-"}. Is it a checkpoint of this '
            'config (same backbone, neck, heads and num_classes)?')
    try:
        teacher.load_state_dict({k: state[k] for k in given}, strict=False)
    except RuntimeError as e:  # shapes (e.g. another num_classes)
        raise RuntimeError(f'the pre-trained teacher checkpoint {path} does '
                           f'not fit the model: {e}') from e


def _scale(value, weight: float):
    """Multiply a loss (a tensor or a list of tensors) by ``weight``."""
    if weight == 1.0:
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(v * weight for v in value)
    return value * weight
