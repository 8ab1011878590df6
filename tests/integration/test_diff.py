"""`fleet-tui diff A B`: a dependency bump named by distribution, files grouped by directory,
and bytes per directory that add up to (about) what the rebase really ships."""

from __future__ import annotations

import json

from fleet_tui.cli import main
from fleet_tui.oci.layer import Entry
from fleet_tui.rebase import rebase
from fleet_tui.rebase.whatchanged import directory_of, what_changed
from tests.support.images import dirs_for, noise, push_layers

SITE = "usr/lib/python3.11/site-packages"


def deps(sklearn: str, seed: int) -> list[Entry]:
    files = {f"{SITE}/numpy/core/_multiarray.so": noise(40_000, 1),  # unchanged
             f"{SITE}/numpy-1.26.4.dist-info/METADATA": b"Name: numpy\nVersion: 1.26.4\n",
             f"{SITE}/sklearn/tree/_tree.so": noise(30_000, seed),
             f"{SITE}/sklearn/__init__.py": f"__version__ = '{sklearn}'\n".encode(),
             f"{SITE}/scikit_learn-{sklearn}.dist-info/METADATA": f"Name: scikit-learn\nVersion: {sklearn}\n".encode(),
             f"{SITE}/scikit_learn-{sklearn}.dist-info/RECORD": b"sklearn/__init__.py,,\n"}
    if sklearn == "1.4.0":
        files[f"{SITE}/sklearn/utils/_new_helper.py"] = b"def helper():\n    return 1\n" * 50
        files[f"{SITE}/threadpoolctl-3.2.0.dist-info/METADATA"] = b"Name: threadpoolctl\nVersion: 3.2.0\n"
        files[f"{SITE}/threadpoolctl.py"] = b"# pool\n" * 100
    else:
        files[f"{SITE}/sklearn/utils/_old_helper.py"] = b"def old():\n    return 0\n" * 40
    return dirs_for(list(files)) + [Entry(p, data=d) for p, d in files.items()]


def app(model_seed: int) -> list[Entry]:
    files = {"var/azureml-app/azureml-models/model.pkl": noise(8_000, model_seed)}
    return dirs_for(list(files)) + [Entry(p, data=d) for p, d in files.items()]


def test_a_dependency_bump_is_named_and_costed(registry, client, config, repo_name, capsys):
    base = [Entry("etc", kind="dir", mode=0o755), Entry("etc/os-release", data=b"ID=test\n")]
    push_layers(client, repo_name, "v3", [base, deps("1.3.0", 5), app(7)])
    push_layers(client, repo_name, "v4", [base, deps("1.4.0", 6), app(8)], mtime=1_800_000_000)
    a, b = f"{registry.host}/{repo_name}:v3", f"{registry.host}/{repo_name}:v4"

    assert main(["diff", a, b, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    dists = {d["name"]: (d["before"], d["after"]) for d in out["distributions"]}
    assert dists == {"scikit-learn": ("1.3.0", "1.4.0"), "threadpoolctl": (None, "3.2.0")}  # numpy: untouched
    dirs = {d["directory"]: d for d in out["directories"]}
    sk = dirs[f"/{SITE}/sklearn"]
    assert (sk["added"], sk["removed"], sk["changed"]) == (1, 1, 2)
    assert {f["path"].rsplit("/", 1)[-1]: f["change"] for f in sk["files"]} == {
        "_new_helper.py": "added", "_old_helper.py": "removed", "_tree.so": "content", "__init__.py": "content"}
    assert f"/{SITE}/numpy" not in dirs
    assert dirs["/var/azureml-app/azureml-models"]["bytes"] > 7_000  # the new 8 KB model, incompressible
    assert max(out["directories"], key=lambda d: d["bytes"])["directory"] == f"/{SITE}/sklearn"

    shipped = rebase(b, a, "v4-delta", config, auto=True, force=True, append=True).new_layer["size"]
    assert abs(out["bytes"] - shipped) <= 0.15 * shipped, (out["bytes"], shipped)  # the estimate is close

    assert main(["diff", a, b]) == 0
    text = capsys.readouterr().out
    assert "scikit-learn" in text and "1.3.0" in text and "1.4.0" in text and f"/{SITE}/sklearn" in text
    assert what_changed(a, a, config).files == 0


def test_directories_group_python_packages_by_top_level():
    assert directory_of(f"{SITE}/sklearn/tree/_tree.so") == f"{SITE}/sklearn"
    assert directory_of(f"{SITE}/threadpoolctl.py") == f"{SITE}/threadpoolctl.py"
    assert directory_of("var/azureml-app/azureml-models/model.pkl") == "var/azureml-app/azureml-models"
    assert directory_of("etc/os-release") == "etc"


def test_the_console_gets_the_same_diff(registry, client, config, repo_name):
    from fleet_tui.ui.live_data import LiveConsoleData

    base = [Entry("etc", kind="dir", mode=0o755), Entry("etc/os-release", data=b"ID=test\n")]
    push_layers(client, repo_name, "v3", [base, deps("1.3.0", 5), app(7)])
    push_layers(client, repo_name, "v4", [base, deps("1.4.0", 6), app(8)], mtime=1_800_000_000)
    a, b = f"{registry.host}/{repo_name}:v3", f"{registry.host}/{repo_name}:v4"
    view = LiveConsoleData(config, read_only=True).what_changed(a, b)
    assert ("scikit-learn", "1.3.0", "1.4.0") in view.distributions
    assert view.bytes == what_changed(a, b, config).bytes
    top = view.directories[0]
    assert top.directory == f"{SITE}/sklearn" and top.files[0][2] >= top.files[-1][2]  # biggest first
