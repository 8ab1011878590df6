"""Deployment limits checked before the PUT (fleet_tui.hub.azure_limits): the documented twin
size measure, and one-line refusals that name the limit."""

from __future__ import annotations

import pytest

from fleet_tui.errors import UsageError
from fleet_tui.hub.azure_limits import check_content, desired_document, module_count, twin_size


def _base(modules: dict) -> dict:
    return {"$edgeAgent": {"properties.desired": {"schemaVersion": "1.1", "modules": modules}},
            "$edgeHub": {"properties.desired": {"schemaVersion": "1.1"}}}


def _module(i: int, **settings) -> dict:
    return {"type": "docker", "settings": {"image": f"acr.io/m{i}@sha256:{'a' * 64}", **settings}}


@pytest.mark.parametrize("doc, size", [
    ({"a": "bc"}, 3),                     # key + value, UTF-8 characters
    ({"n": 1, "f": 2.5}, 18),             # numbers: 8 bytes each
    ({"t": True, "u": False}, 10),        # booleans: 4 bytes each
    ({"é": "日本"}, 2 + 6),                 # UTF-8 lengths, not characters
    ({"a": "x\ny\u0085"}, 3),             # C0 / C1 control characters are not counted
    ({"o": {"p": {"q": "r"}}}, 4),         # nested: the sum of what they hold
    ({"l": ["ab", 1]}, 11),
])
def test_twin_size_is_measured_as_the_service_measures_it(doc, size):
    assert twin_size(doc) == size


def test_layered_keys_are_the_desired_document_they_write():
    layered = {"properties.desired.modules.scoring": {"settings": {"image": "x"}}}
    assert desired_document(layered) == {"modules": {"scoring": {"settings": {"image": "x"}}}}
    assert module_count({"$edgeAgent": layered}) == 1
    assert module_count(_base({f"m{i}": _module(i) for i in range(7)})) == 7


def test_fifty_modules_pass_and_fifty_one_are_refused_naming_the_limit():
    check_content("base-1", _base({f"m{i}": _module(i) for i in range(50)}))
    with pytest.raises(UsageError) as err:
        check_content("base-1", _base({f"m{i}": _module(i) for i in range(51)}))
    assert "51 modules" in str(err.value) and "at most 50" in str(err.value) and "\n" not in str(err.value)


def test_desired_properties_over_32_kb_are_refused_with_their_measured_size():
    env = {f"VAR_{k}": {"value": "v" * 1000} for k in range(40)}  # ~40 KB of env across modules
    with pytest.raises(UsageError) as err:
        check_content("base-2", _base({"scoring": _module(0, env=None), "big": {**_module(1), "env": env}}))
    assert "$edgeAgent" in str(err.value) and "32,768" in str(err.value)
    check_content("base-2", _base({"big": {**_module(1), "env": dict(list(env.items())[:20])}}))  # ~20 KB: fine


def test_a_value_over_4_kb_or_nesting_past_10_is_refused():
    with pytest.raises(UsageError, match="4,096 per value"):
        check_content("l1", {"$edgeAgent": {"properties.desired.modules.scoring": _module(0, note="n" * 5000)}})
    def nested(levels: int) -> dict:
        deep: dict = {"v": "x"}
        for _ in range(levels - 1):
            deep = {"d": deep}
        return deep

    # a layer's module sits at desired.modules.scoring (depth 2 below the root at 0): 9 levels fit
    check_content("l2", {"$edgeAgent": {"properties.desired.modules.scoring": nested(9)}})
    with pytest.raises(UsageError, match="nested more than 10"):
        check_content("l2", {"$edgeAgent": {"properties.desired.modules.scoring": nested(10)}})


@pytest.mark.parametrize("levels", [9, 10])
def test_the_fake_hub_draws_the_depth_line_where_fleet_tui_does(levels):
    from tests.support.twin_limits import deployment_error

    deep: dict = {"v": "x"}
    for _ in range(levels - 1):
        deep = {"d": deep}
    content = {"$edgeAgent": {"properties.desired.modules.scoring": deep}}
    try:
        check_content("l3", content)
        ours = ""
    except UsageError as exc:
        ours = str(exc)
    assert bool(ours) == bool(deployment_error({"modulesContent": content})) == (levels == 10)
