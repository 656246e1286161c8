"""The ``dtype`` key of report and training specs: validated, recorded (only when not float64, so older
specs keep their records and keys), and passed to the models, their training and their analyses."""
from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from gradlab import RNN
from gradlab.study import training as study
from gradlab.study.report import run_spec, unit_inputs, units
from gradlab.study.spec import from_dict, spec_from_dict
from gradlab.study.training import run_study, train_spec_from_dict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPORT = {"name": "r", "datasets": ["agreement:distance=3,n=12"], "hidden_size": 4, "max_lag": 3,
          "states": ["init", "train:scheme=tbptt:2,epochs=1,lr=0.5,batch_size=4"], "per_sentence": True}
TRAIN = {"name": "t", "train": "agreement:distance=3,n=16", "dev": "agreement:distance=3,n=8,seed=1",
         "task": "lm", "hidden_sizes": [4], "schemes": ["tbptt:1"], "learning_rates": [0.5], "seeds": [0],
         "epochs": 2, "batch_size": 4, "snapshots": True, "max_lag": 3, "snapshot_sentences": 8}
F32 = np.dtype(np.float32)


@pytest.mark.parametrize("make, base", [(spec_from_dict, REPORT), (train_spec_from_dict, TRAIN)])
@pytest.mark.parametrize("bad", ["float16", "double", "f32", ""])
def test_bad_dtype_names_the_key_and_the_choices(make, base, bad):
    with pytest.raises(ValueError, match=r"dtype: must be one of \('float64', 'float32'\); received"):
        make({**base, "dtype": bad})


@pytest.mark.parametrize("make, base", [(spec_from_dict, REPORT), (train_spec_from_dict, TRAIN)])
def test_dtype_must_be_a_string(make, base):
    with pytest.raises(ValueError, match="key 'dtype' must be of type str"):
        make({**base, "dtype": 32})


@pytest.mark.parametrize("make, base", [(spec_from_dict, REPORT), (train_spec_from_dict, TRAIN)])
def test_default_is_float64_and_left_out_of_the_records(make, base):
    spec = make(base)
    assert spec.dtype == "float64"
    assert "dtype" not in spec.to_toml() and "dtype" not in spec.recorded()
    assert make({**base, "dtype": "float64"}) == spec


@pytest.mark.parametrize("make, base", [(spec_from_dict, REPORT), (train_spec_from_dict, TRAIN)])
def test_float32_is_recorded_and_round_trips(make, base):
    spec = make({**base, "dtype": "float32"})
    text = spec.to_toml()
    assert text.count('dtype = "float32"') == 1 and spec.recorded()["dtype"] == "float32"
    assert from_dict(tomllib.loads(text)) == spec


def test_float32_units_and_runs_have_their_own_keys():
    r64 = spec_from_dict(REPORT)
    r32 = replace(r64, dtype="float32")
    assert {u.key for u in units(r64)}.isdisjoint(u.key for u in units(r32))
    assert all(u.params["dtype"] == "float32" for u in units(r32))
    assert all("dtype" not in u.params for u in units(r64))
    t64 = train_spec_from_dict(TRAIN)
    t32 = replace(t64, dtype="float32")
    assert {r["digest"] for r in study.runs(t64)}.isdisjoint(r["digest"] for r in study.runs(t32))


def test_report_models_are_drawn_trained_and_converted_to_the_dtype(tmp_path):
    spec = spec_from_dict({**REPORT, "dtype": "float32"})
    for unit in units(spec):                       # an "init" draw and a "train" state trained in float32
        ds, _, model, _ = unit_inputs(spec, unit)
        assert model.dtype == F32, unit.state.label
    model_file = RNN.init(len(ds.vocab), 4, rng=0).save(tmp_path / "m.npz")      # float64 on file
    file_spec = replace(spec, states=[f"file:path={model_file}"])
    (unit,) = units(file_spec)
    assert unit_inputs(file_spec, unit)[2].dtype == F32
    r64 = spec_from_dict(REPORT)
    float64_draw = unit_inputs(r64, units(r64)[0])[2]
    float32_draw = unit_inputs(spec, units(spec)[0])[2]
    np.testing.assert_array_equal(float32_draw.U, float64_draw.U.astype(np.float32))


def test_float32_report_runs_and_records_its_dtype(tmp_path):
    spec = spec_from_dict({**REPORT, "dtype": "float32"})
    root = run_spec(spec, tmp_path, progress=False, render=False)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["spec"]["dtype"] == "float32"
    assert 'dtype = "float32"' in (root / "spec.toml").read_text()
    ref = run_spec(spec_from_dict(REPORT), tmp_path / "f64", progress=False, render=False)
    a, b = pd.read_csv(root / "gap.csv"), pd.read_csv(ref / "gap.csv")
    # the cosine of TBPTT(tau) with the full gradient: float32 shows it to ~1e-6
    np.testing.assert_allclose(a["cosine"], b["cosine"], rtol=1e-4, atol=1e-5)


def test_float32_training_study_trains_and_stores_float32(tmp_path):
    root = run_study(train_spec_from_dict({**TRAIN, "dtype": "float32"}), tmp_path, progress=False, render=False)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["spec"]["dtype"] == "float32"
    (run,) = list(root.glob("runs/*"))
    assert RNN.load(run / "model.npz").dtype == F32
    history = pd.read_csv(root / "history.csv")
    ref = run_study(train_spec_from_dict(TRAIN), tmp_path / "f64", progress=False, render=False)
    np.testing.assert_allclose(history["train_loss"], pd.read_csv(ref / "history.csv")["train_loss"], rtol=1e-4)


# --------------------------------------------------------------------------- the command line
def _toml(table: dict) -> str:
    from gradlab.study.spec import toml_value
    return "".join(f"{k} = {toml_value(v)}\n" for k, v in table.items())


def test_cli_dtype_sets_every_spec(tmp_path):
    from gradlab.cli import _load_specs
    report = tmp_path / "r.toml"
    report.write_text(_toml(REPORT))
    train = tmp_path / "t.toml"
    train.write_text(_toml(TRAIN))
    suite = tmp_path / "s.toml"
    suite.write_text(_toml({k: v for k, v in TRAIN.items() if k not in ("name", "train", "dev", "task")}
                           | {"distributions": ["longest"]})
                     + '[[tasks]]\nname = "a"\ntrain = "agreement:distance=3,n=16"\ntask = "lm"\n')
    jobs = _load_specs([report, train, suite], quick=False, dtype="float32")
    assert jobs[0][0].dtype == jobs[1][0].dtype == "float32"
    assert [s.dtype for s in jobs[2][0].studies] == ["float32"]
    assert _load_specs([report], quick=True)[0][0].dtype == "float64"


def test_cli_bad_dtype_exits_2_naming_it(tmp_path):
    from typer.testing import CliRunner
    from gradlab.cli import app
    report = tmp_path / "r.toml"
    report.write_text(_toml(REPORT))
    result = CliRunner().invoke(app, ["run", str(report), "--dtype", "float16", "--dry-run",
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "dtype: must be one of ('float64', 'float32'); received 'float16'" in result.output
