"""compare_runs.py: reads summary.json / mmengine logs of several work dirs into one table."""
import importlib.util
import json
import os.path as osp

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def load_tool(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(ROOT, 'tools', 'analysis_tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def tool():
    return load_tool('compare_runs')


def write_lines(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('\n'.join(json.dumps(r) for r in records) + '\n')


def test_summary_log_and_test_json(tool, tmp_path, capsys):
    # run A: the demo's summary.json
    a = tmp_path / 'A'
    a.mkdir()
    (a / 'summary.json').write_text(json.dumps(dict(
        bbox_mAP=0.41, bbox_mAP_50=0.7, mIoU=63.5,
        tide=dict(AP=70.1, Cls=2.66, Loc=5.27, Both=0.69, Dupe=0.24, Bkg=1.61, Miss=6.69,
                  FP=9.09, FN=12.38, counts=dict(Cls=3)))))
    # run B: two training sessions; the latest one's last evaluation line wins
    b = tmp_path / 'B'
    write_lines(b / '20260101_000000' / 'vis_data' / 'scalars.json',
                [{'coco/bbox_mAP': 0.1, 'step': 1}])
    write_lines(b / '20260102_000000' / 'vis_data' / 'scalars.json', [
        {'loss': 1.0, 'step': 10},
        {'coco/bbox_mAP': 0.3, 'coco/bbox_mAP_50': 0.5, 'sem_seg/mIoU': 55.0,
         'tide/AP50': 50.0, 'tide/Cls': 1.5, 'tide/FN': 9.0, 'step': 1},
        {'loss': 0.8, 'step': 20},
        {'coco/bbox_mAP': 0.35, 'coco/bbox_mAP_50': 0.55, 'sem_seg/mIoU': 56.0,
         'tide/AP50': 55.0, 'tide/Cls': 1.25, 'tide/FN': 8.0, 'step': 2},
        {'loss': 0.7, 'step': 30}])
    # run C: tools/test.py output (one json dict in the timestamp folder)
    c = tmp_path / 'C'
    (c / '20260103_000000').mkdir(parents=True)
    (c / '20260103_000000' / '20260103_000000.json').write_text(json.dumps(
        {'coco/bbox_mAP': 0.2, 'coco/bbox_mAP_50': 0.4}))
    rows = tool.main([str(a), str(b), str(c), '--names', 'A', 'B', 'C', '--format', 'csv'])
    cols = ['run'] + tool.COLUMNS + ['source']
    rec = {r[0]: dict(zip(cols, r)) for r in rows}
    assert rec['A']['bbox_mAP'] == 0.41 and rec['A']['tide_AP'] == 70.1 and rec['A']['FN'] == 12.38
    assert rec['B']['bbox_mAP'] == 0.35 and rec['B']['mIoU'] == 56.0
    assert rec['B']['Cls'] == 1.25 and rec['B']['tide_AP'] == 55.0 and rec['B']['Loc'] is None
    assert rec['B']['source'].endswith(osp.join('20260102_000000', 'vis_data', 'scalars.json'))
    assert rec['C']['bbox_mAP_50'] == 0.4 and rec['C']['mIoU'] is None
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith('run,bbox_mAP,bbox_mAP_50,mIoU,tide_AP,Cls,Loc')
    assert out[2].startswith('B,0.350,0.550,56.000,55.000,1.250,,')


def test_markdown_and_missing_run(tool, tmp_path, capsys):
    d = tmp_path / 'nothing'
    d.mkdir()
    rows = tool.main([str(d), '--format', 'md'])
    assert rows[0][-1] == 'no metrics found'
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith('| run') and set(out[1]) <= set('|-:')
    with pytest.raises(FileNotFoundError):
        tool.read_run(str(tmp_path / 'does_not_exist'))


def test_tide_analysis_cli(tmp_path, capsys):
    tool = load_tool('tide_analysis')
    gt = dict(images=[dict(id=1, width=100, height=100, file_name='a')],
              annotations=[dict(id=1, image_id=1, category_id=1, bbox=[10, 10, 40, 40],
                                iscrowd=0, area=1600)],
              categories=[dict(id=1, name='rectangle')])
    res = [dict(image_id=1, category_id=1, bbox=[10, 10, 40, 40], score=0.9),
           dict(image_id=1, category_id=1, bbox=[70, 70, 20, 20], score=0.95)]
    (tmp_path / 'gt.json').write_text(json.dumps(gt))
    (tmp_path / 'r.bbox.json').write_text(json.dumps(res))
    out = tool.main([str(tmp_path / 'gt.json'), str(tmp_path / 'r.bbox.json'), '--out',
                     str(tmp_path / 'o'), '--format', 'md'])
    r = out['r.bbox']
    # one background FP scored above the only TP: AP = 50 (precision 1/2 at every recall)
    assert r['AP'] == pytest.approx(50.0) and r['Bkg'] == pytest.approx(50.0)
    assert osp.isfile(tmp_path / 'o' / 'r.bbox_tide_summary.png')
    assert '| r.bbox' in capsys.readouterr().out


def test_normalize_keeps_map75(tool):
    """bbox_mAP_75 is read (the ablation table reports it) from mmengine
    keys and from summary.json alike."""
    out = tool.normalize_metrics({'coco/bbox_mAP_75': 0.25,
                                  'coco/bbox_mAP_50': 0.5, 'seg/mIoU': 0.6,
                                  'tide': {'AP50': 50.0, 'Miss': 3.0}})
    assert out == {'bbox_mAP_75': 0.25, 'bbox_mAP_50': 0.5, 'mIoU': 0.6,
                   'tide_AP': 50.0, 'Miss': 3.0}
    assert tool.normalize_metrics({'bbox_mAP_75': 0.1}) == {'bbox_mAP_75': 0.1}
