"""The TF Serving directory as TF Serving and rollback see it: complete numeric versions only."""
import json
import os

from components import names
from components.serving_dir import model_fingerprint, provenance, rolled_back_provenance, served_versions


def _version(base, name, complete=True, prov=None):
    path = os.path.join(base, name)
    os.makedirs(os.path.join(path, "variables"))
    if complete:
        with open(os.path.join(path, "saved_model.pb"), "wb") as f:
            f.write(b"graph")
        with open(os.path.join(path, "fingerprint.pb"), "wb") as f:
            f.write(name.encode())
    if prov is not None:
        os.makedirs(os.path.dirname(os.path.join(path, names.PROVENANCE)), exist_ok=True)
        with open(os.path.join(path, names.PROVENANCE), "w") as f:
            json.dump(prov, f)
    return path


def test_only_complete_numeric_versions_are_served_in_number_order(tmp_path):
    for name in ("10", "9", "11"):
        _version(str(tmp_path), name)
    _version(str(tmp_path), "12", complete=False)               # a copy in progress
    _version(str(tmp_path), names.STAGING_PREFIX + "13")        # a push in progress
    _version(str(tmp_path), "latest")                           # not a number: TF Serving ignores it
    assert served_versions(str(tmp_path)) == [9, 10, 11]
    assert served_versions(str(tmp_path / "absent")) == []


def test_provenance_and_fingerprint_of_a_version(tmp_path):
    path = _version(str(tmp_path), "5", prov={names.TRAINING_FINGERPRINT: "abc"})
    assert provenance(path) == {names.TRAINING_FINGERPRINT: "abc"}
    assert model_fingerprint(path) == b"5"
    bare = _version(str(tmp_path), "6", complete=False)
    assert provenance(bare) == {} and model_fingerprint(bare) == b""


def test_rolled_back_versions_keep_their_provenance(tmp_path):
    aside = os.path.join(str(tmp_path), names.ROLLED_BACK_DIR)
    _version(aside, "7-1700000000", prov={names.TRAINING_FINGERPRINT: "t7"})
    _version(aside, "8-1700000001", prov={names.TRAINING_FINGERPRINT: "t8"})
    assert sorted(p[names.TRAINING_FINGERPRINT] for p in rolled_back_provenance(str(tmp_path))) == ["t7", "t8"]
    assert served_versions(str(tmp_path)) == []  # nothing aside is served
