"""The ``cell`` and ``num_layers`` keys of report specs: validated (errors name the key), recorded only when not
the Elman default (so Elman specs keep their keys, folders and records), a list of cells multiplies the units,
and every state ("init", "file", "train") builds the unit's cell."""
from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest

from gradlab import RNN, CellModel
from gradlab.model import DEFAULT_SCALE
from gradlab.study.report import plan, unit_inputs, units
from gradlab.study.spec import DEFAULT_SPEC, from_dict, spec_cells, spec_from_dict
from gradlab.study.states import initial_cell_model, load_model, model_cell

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPORT = {"name": "r", "datasets": ["agreement:distance=3,n=12"], "hidden_size": 4, "max_lag": 3,
          "states": ["init"], "per_sentence": False, "block_schemes": ["chunked:2"]}


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize("extra, match", [
    ({"cell": "transformer"}, r"cell: must be one of \('elman', .*'gru', .*'lstm', .*'linear'.*received 'transformer'"),
    ({"cell": ["gru", "rnn-ish"]}, r"cell: must be one of .*received 'rnn-ish'"),
    ({"cell": []}, r"cell: needs at least one cell"),
    ({"cell": ["gru", "gru"]}, r"cell: values must be unique; received \['gru', 'gru'\]"),
    ({"cell": 3}, r"key 'cell' must be of type str or list; received 3"),
    ({"cell": ["gru", 2]}, r"key 'cell' must be a list of strings \(str\); received \['gru', 2\]"),
    ({"num_layers": 0, "cell": "gru"}, r"num_layers: must be an integer >= 1; received 0"),
    ({"num_layers": 1.5}, r"key 'num_layers' must be of type int"),
    ({"num_layers": 2}, r"num_layers: the Elman cell .* has one layer; received num_layers = 2"),
    ({"num_layers": 2, "cell": ["elman", "lstm"]}, r"num_layers: the Elman cell"),
    ({"cell": "lstm", "dtype": "float32"}, r"dtype: float32 is for the Elman cell only"),
    ({"cell": "gru", "states": ["init:activation=tanh"]}, r"states: model state .*activation is the Elman and rnn "
                                                            r"cells'"),
])
def test_bad_cell_keys_name_the_key(extra, match):
    with pytest.raises(ValueError, match=match):
        spec_from_dict({**REPORT, **extra})


def test_the_cells_a_spec_offers():
    assert spec_cells()[0] == "elman" and {"rnn", "gru", "lstm", "linear"} <= set(spec_cells())
    assert all("-" not in c for c in spec_cells())


# ---------------------------------------------------------------------- records and keys
def test_elman_default_is_left_out_of_records_keys_and_folders():
    spec = spec_from_dict(REPORT)
    explicit = spec_from_dict({**REPORT, "cell": "elman", "num_layers": 1})
    assert explicit == spec and spec.cells == ["elman"] and not spec.has_cells
    assert "cell" not in spec.to_toml() and "num_layers" not in spec.recorded()
    assert [(u.key, u.slug, u.labels) for u in units(spec)] == [(u.key, u.slug, u.labels) for u in units(explicit)]
    (unit,) = units(spec)
    assert "cell" not in unit.params and list(unit.labels) == ["dataset", "state"]
    # the built-in default report keeps its keys: nothing about cells enters them
    assert all("cell" not in u.params and "num_layers" not in u.params for u in units(DEFAULT_SPEC))


def test_cells_are_recorded_and_round_trip():
    spec = spec_from_dict({**REPORT, "cell": ["gru", "lstm"], "num_layers": 2})
    text = spec.to_toml()
    assert 'cell = ["gru", "lstm"]' in text and "num_layers = 2" in text
    assert from_dict(tomllib.loads(text)) == spec
    one = spec_from_dict({**REPORT, "cell": "lstm"})
    assert 'cell = "lstm"' in one.to_toml() and one.has_cells and one.cells == ["lstm"]


def test_a_list_of_cells_multiplies_the_units_with_a_state_s_cells_together():
    spec = spec_from_dict({**REPORT, "states": ["init", "init:scale=1.0"], "cell": ["elman", "gru", "lstm"]})
    us = units(spec)
    assert [(u.cell, u.state.scale) for u in us] == [(c, s) for s in (DEFAULT_SCALE, 1.0)
                                                     for c in ("elman", "gru", "lstm")]
    assert len({u.key for u in us}) == len({u.slug for u in us}) == 6
    assert all(u.params["cell"] == u.cell and list(u.labels) == ["dataset", "cell", "state"] for u in us)
    # the Elman unit of a spec with cells is keyed apart from the Elman-only spec's unit
    assert us[0].key not in {u.key for u in units(spec_from_dict(REPORT))}


# ---------------------------------------------------------------------- the models of the states
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm", "linear"])
def test_init_state_is_pytorch_s_draw_times_scale_over_the_default(cell):
    spec = spec_from_dict({**REPORT, "cell": cell, "states": ["init", "init:scale=0.632456"]})
    default, doubled = (unit_inputs(spec, u)[2] for u in units(spec))
    assert isinstance(default, CellModel) and default.cell.name == cell and default.hidden_size == 4
    ds = unit_inputs(spec, units(spec)[0])[0]
    assert (default.vocab_size, default.output_size) == (len(ds.vocab), ds.n_outputs("lm"))
    bound = 1 / np.sqrt(4)
    for name, a in default.params.items():
        assert np.all(np.abs(a) <= bound if not name.startswith("lambda") else (a >= 0) & (a <= 1)), name
        np.testing.assert_allclose(doubled.params[name], a * 0.632456 / DEFAULT_SCALE, rtol=1e-15)


def test_the_rnn_cell_takes_the_state_s_activation():
    spec = spec_from_dict({**REPORT, "cell": ["rnn", "lstm"], "states": ["init", "init:activation=tanh"]})
    models = {(u.cell, u.state.activation): unit_inputs(spec, u)[2] for u in units(spec)}
    assert models[("rnn", "sigmoid")].activation == "sigmoid" and models[("rnn", "tanh")].activation == "tanh"
    assert models[("lstm", "tanh")].activation is None


def test_stacked_cells_and_their_own_draw_per_dataset():
    spec = spec_from_dict({**REPORT, "cell": "gru", "num_layers": 2,
                           "datasets": ["agreement:distance=3,n=12", "agreement:distance=4,n=12"]})
    a, b = (unit_inputs(spec, u)[2] for u in units(spec))
    assert a.num_layers == 2 and "weight_hh_l1" in a.params
    assert not np.array_equal(a.params["weight_hh_l0"][:, :2], b.params["weight_hh_l0"][:, :2])
    same = initial_cell_model(units(spec)[0].state, "gru", a.vocab_size, 4, a.output_size,
                              key=units(spec)[0].dataset, num_layers=2)
    for name in a.params:
        np.testing.assert_array_equal(same.params[name], a.params[name])


def _vocab_and_outputs():
    spec = spec_from_dict(REPORT)
    ds = unit_inputs(spec, units(spec)[0])[0]
    return len(ds.vocab), ds.n_outputs("lm")


def test_file_states_load_by_what_the_file_holds(tmp_path):
    V, O = _vocab_and_outputs()
    lstm = CellModel.init("lstm", V, 5, O, seed=3).save(tmp_path / "lstm.npz")
    elman = RNN.init(V, 6, O, rng=1).save(tmp_path / "elman.npz")
    assert isinstance(load_model(lstm), CellModel) and isinstance(load_model(elman), RNN)
    assert model_cell(load_model(lstm)) == ("lstm", 1) and model_cell(load_model(elman)) == ("elman", 1)
    spec = spec_from_dict({**REPORT, "cell": ["elman", "lstm"],
                           "states": ["init", f"file:path={lstm}", f"file:path={elman}"]})
    us = units(spec)   # each file state is analysed for the cell its file holds only
    assert [(u.state.kind, u.cell) for u in us] == [("init", "elman"), ("init", "lstm"), ("file", "lstm"),
                                                     ("file", "elman")]
    models = [unit_inputs(spec, u)[2] for u in us]
    assert models[2].hidden_size == 5 and isinstance(models[2], CellModel)
    np.testing.assert_array_equal(models[2].params["weight_hh_l0"], CellModel.load(lstm).params["weight_hh_l0"])
    assert isinstance(models[3], RNN) and models[3].hidden_size == 6
    assert all(u.status == "compute" for u in plan(spec, tmp_path / "out").units)


def test_file_states_of_another_cell_or_depth_are_refused(tmp_path):
    V, O = _vocab_and_outputs()
    gru = CellModel.init("gru", V, 4, O, seed=0).save(tmp_path / "gru.npz")
    deep = CellModel.init("gru", V, 4, O, num_layers=2, seed=0).save(tmp_path / "deep.npz")
    with pytest.raises(ValueError, match=r"states: model file .*gru\.npz holds a 'gru' model, but the spec's cell is "
                                         r"\['lstm'\]; add 'gru' to the cell key"):
        spec_from_dict({**REPORT, "cell": "lstm", "states": [f"file:path={gru}"]})
    with pytest.raises(ValueError, match=r"states: model file .*gru\.npz holds a 'gru' model, but the spec's cell is "
                                         r"\['elman'\]"):
        spec_from_dict({**REPORT, "states": [f"file:path={gru}"]})
    with pytest.raises(ValueError, match=r"states: model file .*deep\.npz holds a gru model of 2 layer\(s\), but the "
                                         r"spec has num_layers = 1; set num_layers = 2"):
        spec_from_dict({**REPORT, "cell": "gru", "states": [f"file:path={deep}"]})
    spec = spec_from_dict({**REPORT, "cell": "gru", "num_layers": 2, "states": [f"file:path={deep}"]})
    assert unit_inputs(spec, units(spec)[0])[2].num_layers == 2


def test_file_of_another_vocabulary_is_refused_by_the_plan(tmp_path):
    V, O = _vocab_and_outputs()
    small = CellModel.init("lstm", V - 1, 4, O - 1, seed=0).save(tmp_path / "small.npz")
    spec = spec_from_dict({**REPORT, "cell": "lstm", "states": [f"file:path={small}"]})
    with pytest.raises(ValueError, match=r"states: model file .*small\.npz has \|V\| = "):
        plan(spec, tmp_path / "out")


def test_cell_units_have_no_dependency_rows_and_nan_elman_statistics(tmp_path):
    from gradlab.study.report import compute_unit
    spec = spec_from_dict({**REPORT, "cell": ["elman", "gru"]})
    elman, gru = (compute_unit(spec, u)["frames"] for u in units(spec))
    assert "dependencies" in elman and "dependencies" not in gru and "dependency_kept" not in gru
    assert np.isfinite(elman["summary"]["spectral_radius"]).all()
    assert gru["summary"][["spectral_radius", "sigma_max", "mean_fprime"]].isna().all().all()
    assert set(gru["gap"]["parameter"]) == {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "all"}
    assert list(gru["gap"].columns[:3]) == ["dataset", "cell", "state"] and set(gru["gap"]["cell"]) == {"gru"}


def test_replace_keeps_validation_honest():
    spec = replace(spec_from_dict(REPORT), cell=["lstm"], num_layers=3)
    spec.validate()
    assert spec.has_cells and spec.cells == ["lstm"]


# ---------------------------------------------------------------------- training studies
TRAIN = {"name": "t", "train": "agreement:distance=3,n=16", "task": "lm", "hidden_sizes": [4], "schemes": ["tbptt:1"],
         "learning_rates": [0.5], "seeds": [0, 1], "epochs": 1, "batch_size": 4}


@pytest.mark.parametrize("extra, match", [
    ({"cell": "gru2"}, r"cell: must be one of \('elman', .*'gru', .*'lstm', .*'linear'"),
    ({"cell": ["lstm", "lstm"]}, r"cell: values must be unique"),
    ({"num_layers": 3}, r"num_layers: the Elman cell"),
    ({"cell": "lstm", "num_layers": 0}, r"num_layers: must be an integer >= 1"),
    ({"cell": "gru", "dtype": "float32"}, r"dtype: float32 is for the Elman cell only"),
    ({"cell": "gru", "activation": "tanh"}, r"activation: is the Elman cell's"),
    ({"cell": ["gru", "lstm"], "recurrent_init": "orthogonal"}, r"recurrent_init: is the Elman cell's"),
])
def test_bad_cell_keys_of_a_training_study(extra, match):
    from gradlab.study.training import train_spec_from_dict
    with pytest.raises(ValueError, match=match):
        train_spec_from_dict({**TRAIN, **extra})


def test_a_list_of_cells_is_a_grid_dimension_and_elman_runs_keep_their_digests():
    from gradlab.study import training
    from gradlab.study.training import train_spec_from_dict
    elman = train_spec_from_dict(TRAIN)
    assert train_spec_from_dict({**TRAIN, "cell": "elman"}) == elman and "cell" not in elman.to_toml()
    plain = training.runs(elman)
    assert all("cell" not in r and "cell" not in r["params"] for r in plain)
    assert training.run_columns(plain[0]) == training.RUN_COLUMNS
    spec = train_spec_from_dict({**TRAIN, "cell": ["elman", "lstm"], "num_layers": 1})
    runs = training.runs(spec)
    assert [(r["cell"], r["seed"]) for r in runs] == [("elman", 0), ("elman", 1), ("lstm", 0), ("lstm", 1)]
    assert [r["run"] for r in runs[::2]] == ["elman_h4_tbptt:1_lr0.5_seed0", "lstm_h4_tbptt:1_lr0.5_seed0"]
    assert len({r["digest"] for r in runs}) == 4 and not {r["digest"] for r in runs} & {r["digest"] for r in plain}
    assert training.run_columns(runs[0])[:2] == ("run", "cell")
    assert 'cell = ["elman", "lstm"]' in spec.to_toml()


def test_a_study_s_initial_models_are_its_cells():
    from gradlab.study import training
    from gradlab.study.training import train_spec_from_dict
    spec = train_spec_from_dict({**TRAIN, "cell": ["gru", "linear"], "num_layers": 2})
    train, _ = training.load_data(spec)
    models = [training.initial_model(spec, r, train) for r in training.runs(spec)]
    assert [(m.cell.name, m.num_layers) for m in models] == [("gru-2layers", 2)] * 2 + [("linear-2layers", 2)] * 2
    assert not np.array_equal(models[0].params["weight_hh_l0"], models[1].params["weight_hh_l0"])   # seeds 0, 1
    elman = training.initial_model(train_spec_from_dict(TRAIN), training.runs(train_spec_from_dict(TRAIN))[0], train)
    assert isinstance(elman, RNN)


def test_stacked_cell_units_measure_the_gap_of_every_layer():
    from gradlab.study.report import compute_unit
    spec = spec_from_dict({**REPORT, "cell": "lstm", "num_layers": 2})
    (unit,) = units(spec)
    frames = compute_unit(spec, unit)["frames"]
    assert {"weight_hh_l0", "weight_hh_l1", "bias_ih_l1", "all"} <= set(frames["gap"]["parameter"])
    assert unit.params["num_layers"] == 2 and "lstm" in unit.slug
