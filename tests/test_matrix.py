"""The coverage matrix (handsim.bench.matrix) from results.json files written here by hand:
every cell, coverage count, the JSON, the table and the heat map's colours match the inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from handsim.bench.matrix import CELL_PX, heatmap_geometry, load_matrix, write_matrix
from handsim.cli import main
from handsim.errors import ConfigurationError, ResultsError
from handsim.grasps import default_taxonomy

# hand name -> {grasp id: (successes, trials)}; grasp types not listed were not run.
HAND_A = {"large_diameter": (3, 3), "tip_pinch": (1, 3), "lateral": (2, 3), "palmar": (0, 3)}
HAND_B = {"large_diameter": (0, 3), "tip_pinch": (3, 3), "ring": (2, 3)}


def write_results(path: Path, hand: str, outcomes: dict[str, tuple[int, int]], trials: int = 3,
                  threshold: float = 0.5, policy: str = "handsim.policies:scripted",
                  config: dict | None = None) -> Path:
    """A results.json in the file's own layout (schema 1), written without handsim's code;
    ``config`` adds or replaces keys of its ``config``."""
    taxonomy = default_taxonomy()
    grasps = []
    for gid, (wins, n) in outcomes.items():
        g = taxonomy.get(gid)
        grasps.append({
            "number": g.number, "id": g.id, "name": g.name, "type": g.type,
            "trial_results": [
                {"trial": t, "seed": 100 + t, "success": t < wins, "q1": 0.1, "max_penetration_m": 0.0,
                 "contact_regions": ["palm.pad"], "failure_reasons": [] if t < wins else ["dropped"]}
                for t in range(n)
            ],
        })
    grasps.sort(key=lambda g: g["number"])
    data = {"schema": 1, "complete": True, "hand": {"name": hand, "path": f"/hands/{hand}", "dof": 20},
            "policy": policy,
            "config": {"trials": trials, "success_threshold": threshold, "grasps": [g["id"] for g in grasps],
                       "seed": 0} | (config or {}),
            "grasps": grasps}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def two_files(tmp_path) -> list[Path]:
    return [write_results(tmp_path / "a" / "results.json", "hand_a", HAND_A),
            write_results(tmp_path / "b" / "results.json", "hand_b", HAND_B)]


def test_matrix_cells_match_the_inputs(two_files):
    m = load_matrix(two_files)
    numbers = [g[0] for g in m.grasps]
    assert numbers == list(range(1, 34)) and m.total == 33
    data = m.to_dict()
    assert [h["label"] for h in data["hands"]] == ["hand_a", "hand_b"]
    for row, inputs in enumerate((HAND_A, HAND_B)):
        for col, (_, gid, _, _) in enumerate(m.grasps):
            if gid in inputs:
                wins, n = inputs[gid]
                assert data["success_rate"][row][col] == pytest.approx(wins / n)
                assert data["successes"][row][col] == wins and data["trials"][row][col] == n
                assert data["achieved"][row][col] is (wins / n >= 0.5)
            else:
                assert data["success_rate"][row][col] is None
                assert data["trials"][row][col] == 0 and data["achieved"][row][col] is False
    # achieved: A has large_diameter 3/3, lateral 2/3 -> 2; B has tip_pinch 3/3, ring 2/3 -> 2
    assert data["hands"][0]["coverage"] == {"achieved": 2, "run": 4, "total": 33}
    assert data["hands"][1]["coverage"] == {"achieved": 2, "run": 3, "total": 33}
    assert data["hands"][0]["source"] == str(two_files[0])
    assert data["notes"] == []  # same policy, threshold and trials; both complete


def test_table_json_and_heatmap_files(two_files, tmp_path):
    m = load_matrix(two_files)
    table = m.table()
    lines = table.splitlines()
    assert len([ln for ln in lines if ln[:2].strip().isdigit()]) == 33
    line_1 = next(ln for ln in lines if ln.startswith(" 1  Large Diameter"))
    assert line_1.split()[-4:] == ["3/3", "yes", "0/3", "no"]
    line_24 = next(ln for ln in lines if ln.startswith("24  Tip Pinch"))
    assert line_24.split()[-4:] == ["1/3", "no", "3/3", "yes"]
    line_31 = next(ln for ln in lines if ln.startswith("31  Ring"))
    assert line_31.split()[-3:] == ["-", "2/3", "yes"]
    assert "2/33 (4 run)" in lines[-1] and "2/33 (3 run)" in lines[-1]

    paths = write_matrix(m, tmp_path / "out")
    assert json.loads(paths["json"].read_text()) == json.loads(json.dumps(m.to_dict()))
    geo = heatmap_geometry(m)
    with Image.open(paths["png"]) as img:
        assert img.format == "PNG" and img.size == (geo.width, geo.height)
        assert geo.width >= geo.left + 33 * CELL_PX
        rgb = img.convert("RGB")

        def corner(row: int, number: int) -> tuple[int, int, int]:
            x0, y0, _, _ = geo.cell_box(row, number - 1)
            return rgb.getpixel((x0 + 3, y0 + 3))  # away from the centre dot

        def centre(row: int, number: int) -> tuple[int, int, int]:
            x0, y0, x1, y1 = geo.cell_box(row, number - 1)
            return rgb.getpixel(((x0 + x1) // 2, (y0 + y1) // 2))

        r, g, b = corner(0, 1)  # hand A, large diameter 3/3: green
        assert g > r + 60 and g > b
        r, g, b = corner(1, 1)  # hand B, large diameter 0/3: red
        assert r > g + 60 and r > b + 60
        r, g, b = corner(0, 2)  # not run: neutral grey
        assert r == g == b and 150 < r < 250
        assert centre(0, 1) == (0, 0, 0)  # achieved: dot
        assert centre(0, 24) != (0, 0, 0)  # 1/3: not achieved, no dot
        assert centre(1, 31) == (0, 0, 0)


def test_notes_labels_and_errors(tmp_path):
    a = write_results(tmp_path / "a.json", "same", HAND_A)
    b = write_results(tmp_path / "b.json", "same", {"tip_pinch": (1, 1)}, trials=1, threshold=0.6)
    m = load_matrix([a, b])
    assert [r.label for r in m.rows] == ["same", "same#2"]
    assert any("success threshold" in n and "same 0.5" in n and "same#2 0.6" in n for n in m.notes)
    assert any("trials per type" in n for n in m.notes)
    c = write_results(tmp_path / "c.json", "short", {"ring": (2, 2)}, trials=3)
    assert any(n == "short: incomplete run (2/3 trials; finish it with --resume)" for n in load_matrix([c]).notes)
    assert m.rows[1].achieved[23] is True  # 1/1 >= 0.6
    with pytest.raises(ConfigurationError, match="at least one"):
        load_matrix([])
    with pytest.raises(ConfigurationError, match="labels must differ"):
        load_matrix([a, b], labels=["x", "x"])
    with pytest.raises(ResultsError, match="no such results file"):
        load_matrix([tmp_path / "missing.json"])


def test_notes_name_every_configuration_difference(tmp_path):
    """Runs judged or driven differently (seed, protocol, episode, env) are noted key by key."""
    protocol = {"max_rotation_deg": 15.0, "max_translation_m": 0.02}
    a = write_results(tmp_path / "a.json", "hand_a", HAND_A, config={
        "protocol": protocol, "episode": {"control_hz": 25.0}, "env_id": "handsim/Grasp-v0", "env_kwargs": {}})
    b = write_results(tmp_path / "b.json", "hand_b", HAND_B, config={
        "seed": 7, "protocol": protocol | {"max_rotation_deg": 45.0}, "env_id": "other/Grasp-v0",
        "env_kwargs": {"friction": 2.0}})
    assert load_matrix([a, b]).notes == (
        "the runs differ in config.seed: hand_a 0, hand_b 7",
        "the runs differ in config.protocol.max_rotation_deg: hand_a 15.0, hand_b 45.0",
        "the runs differ in config.episode: hand_a {'control_hz': 25.0}, hand_b (not recorded)",
        "the runs differ in config.env_id: hand_a 'handsim/Grasp-v0', hand_b 'other/Grasp-v0'",
        "the runs differ in config.env_kwargs.friction: hand_a (not recorded), hand_b 2.0",
    )
    # the same configuration in both: nothing to note
    c = write_results(tmp_path / "c.json", "hand_c", HAND_B, config={"protocol": protocol})
    d = write_results(tmp_path / "d.json", "hand_d", HAND_A, config={"protocol": dict(protocol)})
    assert load_matrix([c, d]).notes == ()


def test_cli_compare_from_results(two_files, tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(["compare", "--from-results", str(two_files[0]), str(two_files[1]), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "hand_a" in captured.out and "coverage" in captured.out
    data = json.loads((out / "matrix.json").read_text())
    assert [h["label"] for h in data["hands"]] == ["hand_a", "hand_b"]
    assert (out / "matrix.png").is_file()
    code = main(["compare", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "expected at least one HAND or --from-results" in err
