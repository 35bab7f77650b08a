"""ROI properties against the known failures of ROI calculators (the Automation Kit's among them): the volume
ignored, negative savings hidden, a total that is one solution's. Checked over generated inputs (hypothesis)."""
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain import roi
from shared.domain.impact import Volume
from shared.domain.policy import RoiParams

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
money = st.floats(min_value=0.5, max_value=500.0, allow_nan=False)
effect = st.floats(min_value=0.05, max_value=20.0, allow_nan=False)


@st.composite
def measured_row(draw, metric: str, harmful: bool | None = None):
    """A significant difference on `metric` (lower is better), helpful or harmful, with or without `acted`."""
    size, width = draw(effect), draw(st.floats(min_value=0.0, max_value=0.9))
    harmful = draw(st.booleans()) if harmful is None else harmful
    diff = size if harmful else -size
    ci = sorted((diff - width * size, diff + width * size))
    row = {"metric": metric, "status": "ok", "significant": True, "better": "lower", "unit": None,
           "difference": diff, "ci": {"low": ci[0], "high": ci[1]}, "acted": None}
    if draw(st.booleans()):
        share = draw(st.floats(min_value=0.2, max_value=1.0))
        row["acted"] = {"difference": diff / share, "ci": {"low": ci[0] / share, "high": ci[1] / share},
                        "share": share}
    return row


@st.composite
def case(draw):
    """(metric rows, ROI parameters, volume) of one action version."""
    params = RoiParams(valuePerUnit={"cycle_time_days": draw(money)}, leakageMetrics=["leakage_amount"],
                       handlingMinutes=draw(st.floats(min_value=1, max_value=120)),
                       hourlyCost=draw(st.floats(min_value=1, max_value=200)),
                       valuePerResolvedCase=draw(st.none() | money),
                       freedHoursAs=draw(st.sampled_from(["labour", "throughput"])))
    rows = [draw(measured_row("cycle_time_days")), draw(measured_row("leakage_amount"))]
    treated = draw(st.integers(min_value=1, max_value=5000))
    acted = draw(st.integers(min_value=0, max_value=treated))
    volume = Volume(treated, draw(st.integers(min_value=0, max_value=2000)), acted,
                    draw(st.integers(min_value=0, max_value=acted)), T0,
                    T0 + timedelta(days=draw(st.integers(min_value=0, max_value=365))))
    return rows, params, volume


def doubled(v: Volume) -> Volume:
    return Volume(2 * v.treated, 2 * v.control, 2 * v.acted, 2 * v.deflected, v.first, v.last)


@settings(max_examples=200, deadline=None)
@given(case())
def test_roi_scales_with_volume_every_measured_and_counted_term_doubles_with_the_cases(c):
    rows, params, volume = c
    once, twice = roi.compute(rows, params, volume), roi.compute(rows, params, doubled(volume))
    for a, b in zip(once["terms"], twice["terms"], strict=True):
        assert (a["term"], a["basis"], a["inTotal"]) == (b["term"], b["basis"], b["inTotal"])
        if a["basis"] in ("measured", "counted"):
            for k in ("value", "low", "high"):
                assert b[k] == pytest.approx(2 * a[k], abs=0.011)
    for k in ("value", "low", "high"):
        assert twice["total"][k] == pytest.approx(2 * once["total"][k], abs=0.05)


@settings(max_examples=200, deadline=None)
@given(case(), measured_row("cycle_time_days", harmful=True))
def test_a_harmful_measured_effect_stays_negative_and_lowers_the_total_by_exactly_its_value(c, harm):
    rows, params, volume = c
    with_harm = roi.compute([harm, rows[1]], params, volume)
    without = roi.compute([rows[1]], params, volume)  # the metric unmeasured: not in the total
    [term] = [t for t in with_harm["terms"] if t["term"] == "costOfDelay"]
    assert term["basis"] == "measured" and term["inTotal"]
    cases = volume.acted if harm["acted"] else volume.treated
    assert term["high"] <= 0 and (term["value"] < 0 if cases else term["value"] == 0)
    for k in ("value", "low", "high"):
        assert with_harm["total"][k] == pytest.approx(without["total"][k] + term[k], abs=0.05)
    in_total = [t for t in with_harm["terms"] if t["inTotal"]]
    assert with_harm["total"]["value"] == pytest.approx(sum(t["value"] for t in in_total), abs=0.05)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(case(), st.sampled_from(["a", "b", "c"]), st.integers(min_value=1, max_value=3)),
                min_size=1, max_size=8))
def test_the_portfolio_total_is_the_sum_over_every_action_version_and_the_projection_over_the_latest(cases):
    items = [{"actionId": action, "actionVersion": version, "roi": roi.compute(*c)} for c, action, version in cases]
    [p] = roi.portfolio(items)
    assert p["versions"] == len(items) and p["valued"] == len(items)
    latest = {i["actionId"]: max(j["actionVersion"] for j in items if j["actionId"] == i["actionId"]) for i in items}
    projected = [i["roi"] for i in items if i["actionVersion"] == latest[i["actionId"]]]
    assert p["projected"] == len(projected)
    for k in ("value", "low", "high"):
        assert p["total"][k] == pytest.approx(sum(i["roi"]["total"][k] for i in items), abs=0.01 * len(items))
        assert p["annualized"][k] == pytest.approx(sum(r["annualized"][k] for r in projected), abs=0.01 * len(items))
    assert p["annualized"]["label"].startswith("projection: ")
