import pytest
import torch
import torch.nn.functional as F

from bombo.models.task_modules.memory_bank import (ClassMemoryBank,
                                                   segmentation_keys)


def test_fifo_per_class():
    bank = ClassMemoryBank(num_classes=3, dim=2, size_per_class=3)
    assert bank.get(0).shape == (0, 2)
    e = torch.arange(10.).reshape(5, 2)  # rows (0,1) (2,3) (4,5) (6,7) (8,9)
    bank.push(e[:2], torch.tensor([0, 0]))
    assert bank.get(0).tolist() == [[0, 1], [2, 3]]
    bank.push(e[2:], torch.tensor([0, 1, 0]))
    # class 0 received 4 keys, size 3: the oldest (0,1) is evicted
    assert bank.get(0).tolist() == [[2, 3], [4, 5], [8, 9]]
    assert bank.get(1).tolist() == [[6, 7]]
    bank.push(torch.tensor([[10., 11.]]), torch.tensor([0]))
    assert bank.get(0).tolist() == [[4, 5], [8, 9], [10, 11]]
    # more keys than the queue in one push: the last ones stay, in order
    bank.push(torch.arange(8.).reshape(4, 2) + 100, torch.zeros(4).long())
    assert bank.get(0).tolist() == [[102, 103], [104, 105], [106, 107]]
    keys, labels = bank.all_keys()
    assert labels.tolist() == [0, 0, 0, 1]
    assert keys[-1].tolist() == [6, 7]
    assert bank.get(2).shape == (0, 2)


def test_bank_buffers_checkpoint_and_errors():
    bank = ClassMemoryBank(2, 2, 2)
    bank.push(torch.tensor([[1., 2.]], requires_grad=True), torch.tensor([1]))
    sd = bank.state_dict()
    assert set(sd) == {'keys', 'ptr', 'count'}
    other = ClassMemoryBank(2, 2, 2)
    other.load_state_dict(sd)
    assert other.get(1).tolist() == [[1., 2.]]
    assert not other.keys.requires_grad
    with pytest.raises(ValueError):
        bank.push(torch.zeros(1, 3), torch.tensor([0]))
    with pytest.raises(ValueError):
        bank.push(torch.zeros(1, 2), torch.tensor([2]))


def test_segmentation_keys_components():
    feats = torch.zeros(1, 2, 3, 4)
    feats[0, 0] = torch.tensor([[1., 1., 0., 3.], [0., 0., 0., 0.],
                                [2., 0., 0., 0.]])
    feats[0, 1] = torch.tensor([[0., 2., 0., 4.], [0., 0., 0., 0.],
                                [0., 0., 0., 5.]])
    seg = torch.tensor([[[1, 1, 0, 1], [0, 0, 0, 255], [2, 0, 0, 2]]])
    keys, labels = segmentation_keys(feats, seg)
    # class 1: components {(0,0),(0,1)} mean (1,1); {(0,3)} (3,4)
    # class 2: components {(2,0)} (2,0); {(2,3)} (0,5)
    got = sorted(zip(labels.tolist(), [tuple(k) for k in keys.tolist()]))
    exp = sorted([(0, (0.7071, 0.7071)), (0, (0.6, 0.8)), (1, (1., 0.)),
                  (1, (0., 1.))])
    assert [g[0] for g in got] == [e[0] for e in exp]
    for g, e in zip(got, exp):
        assert g[1] == pytest.approx(e[1], abs=1e-4)
    keys, labels = segmentation_keys(feats, seg[:, None], mode='class')
    assert sorted(labels.tolist()) == [0, 1]
    k1 = keys[labels == 0][0]
    assert torch.allclose(k1, F.normalize(torch.tensor([5., 6.]), dim=0))


def test_segmentation_keys_downsampled_and_empty():
    feats = torch.zeros(1, 2, 1, 2)
    feats[0, :, 0, 0] = torch.tensor([1., 0.])
    feats[0, :, 0, 1] = torch.tensor([0., 1.])
    seg = torch.zeros(1, 2, 4, dtype=torch.long)
    seg[0, 0, 1:4] = 3  # 1 pixel in cell 0, 2 pixels in cell 1
    keys, labels = segmentation_keys(feats, seg)
    assert labels.tolist() == [2]
    assert torch.allclose(keys[0], F.normalize(torch.tensor([1., 2.]), dim=0))
    keys, labels = segmentation_keys(feats, torch.zeros(1, 2, 4).long())
    assert keys.shape == (0, 2) and labels.shape == (0, )


# ------------------------------------------------ shared bank under DDP
def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _rank_keys(rank, step):
    """Different keys on each rank, different counts (rank 1 pushes none at
    step 1), labels in 0..2."""
    n = [[3, 0, 5], [2, 4, 1]][rank][step]
    gen = torch.Generator().manual_seed(100 * rank + step)
    keys = torch.randn(n, 4, generator=gen)
    return keys, torch.randint(0, 3, (n, ), generator=gen)


def _dist_worker(rank, world_size, port, out_dir):
    import os
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        shared = ClassMemoryBank(3, 4, 4)
        local = ClassMemoryBank(3, 4, 4, gather=False)
        for step in range(3):
            shared.push(*_rank_keys(rank, step))
            local.push(*_rank_keys(rank, step))
        torch.save(dict(shared=shared.state_dict(), local=local.state_dict()),
                   os.path.join(out_dir, f'{rank}.pth'))
    finally:
        dist.destroy_process_group()


def test_bank_is_gathered_across_two_gloo_ranks(tmp_path):
    """2 processes (gloo) push different keys, in different numbers (zero
    included): both banks end equal to one bank that received, at every
    step, rank 0's keys then rank 1's. Without ``gather`` they differ."""
    import torch.multiprocessing as mp
    mp.spawn(_dist_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2,
             join=True)
    banks = [torch.load(tmp_path / f'{r}.pth', weights_only=True)
             for r in (0, 1)]
    expected = ClassMemoryBank(3, 4, 4)
    for step in range(3):
        for rank in (0, 1):
            expected.push(*_rank_keys(rank, step))
    assert int(expected.count.sum()) == 11  # 15 keys, queues of 4
    for bank in banks:
        for name, value in expected.state_dict().items():
            assert torch.equal(bank['shared'][name], value), name
    assert not torch.equal(banks[0]['local']['keys'],
                           banks[1]['local']['keys'])


def test_gather_keys_is_a_no_op_when_not_distributed():
    from bombo.models.task_modules.memory_bank import gather_keys
    keys, labels = torch.randn(3, 2), torch.tensor([0, 1, 0])
    k, lab = gather_keys(keys, labels)
    assert k is keys and lab is labels
