"""harness.report.profile: profile.csv loading, role shares, the furthest-from-peak
finding, the plots and the section's HTML, on hand-built profile rows.

The rows use the real spec layers (names, roles and MACs at 224 px) with per-role
rates near what ONNX Runtime reached on one laptop core (1x1 convs ~45-50 GMAC/s,
depthwise 3x3 ~19, standard 3x3 ~54) and a slower second backend; every expected
value is computed here from the frame.
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.profiling.layers import UNATTRIBUTED, spec_layers
from harness.report.profile import (
    FRAME_COLUMNS,
    MIN_TIME_SHARE,
    PROFILE_COLUMNS,
    PROFILE_CSV,
    SETTING,
    TEXT_COLUMNS,
    furthest_from_peak,
    layer_rates,
    load_profiles,
    role_shares,
    section_html,
    share_bars,
)
from harness.results import cell_id
from harness.spec import load_spec

DEVICE = {"device_id": "x86-laptop", "device_name": "Laptop i7", "run_id": "20260401T090000"}
CONV = {"mobilenet_v2": "depthwise", "standard_conv": "standard"}
# GMAC/s per role: each layer's rate is this times a seeded factor in [0.8, 1.2].
RATES = {
    "onnxruntime": {
        "stem": 36.0,
        "expand 1x1": 44.0,
        "depthwise 3x3": 19.0,
        "standard 3x3": 54.0,
        "project 1x1": 50.0,
        "head": 48.0,
        "classifier": 5.0,
    },
    "tflite": {
        "stem": 30.0,
        "expand 1x1": 40.0,
        "depthwise 3x3": 12.0,
        "standard 3x3": 47.0,
        "project 1x1": 35.0,
        "head": 41.0,
        "classifier": 30.0,
    },
}
MODES = {"onnxruntime": "cpu", "tflite": "xnnpack"}
PEAK = 60.0  # fp32 GEMM peak at 1 thread, GMAC/s
HOSTILE_REASON = "<b>torch.profiler</b> & friends: no per-op times in compile mode"


def cell_rows(backend: str, model: str, seed: int, with_peak: bool = True) -> list[dict]:
    """One profiled cell: a row per spec layer and the unattributed row, as the writer does."""
    rng = np.random.default_rng(seed)
    cell = {
        **DEVICE,
        "model": model,
        "width": 1.0,
        "resolution": 224,
        "conv": CONV[model],
        "backend": backend,
        "mode": MODES[backend],
        "precision": "fp32",
        "batch": 1,
        "threads": 1,
    }
    cell["cell_id"] = cell_id(cell)
    layers = []
    for layer in spec_layers(load_spec(model)):
        if layer.macs:
            rate = RATES[backend][layer.role] * rng.uniform(0.8, 1.2)
            ms = layer.macs / rate / 1e6
        else:  # pool
            rate, ms = None, 0.02
        layers.append((layer.name, layer.role, layer.macs, ms, rate))
    layers.append((UNATTRIBUTED, "unattributed", 0, 0.04, None))
    total = sum(ms for _, _, _, ms, _ in layers)
    unprofiled = total / rng.uniform(1.05, 1.15)
    return [
        {
            **cell,
            "layer": name,
            "role": role,
            "macs": macs,
            "ms_p50": ms,
            "time_share": ms / total,
            "gmacs_per_s": rate,
            "peak_pct": 100 * rate / PEAK if rate and with_peak else None,
            "profiled_ms": total,
            "unprofiled_p50_ms": unprofiled,
            "overhead_ratio": total / unprofiled,
            "iterations": 20,
            "events": 56 * 20,
            "mapped_events": 55 * 20,
            "unattributed_events": 20,
            "source": f"{backend} profiler",
            "status": "ok",
            "reason": None,
        }
        for name, role, macs, ms, rate in layers
    ]


def skipped_row() -> dict:
    cell = {
        **DEVICE,
        "model": "mobilenet_v2",
        "width": 1.0,
        "resolution": 224,
        "conv": "depthwise",
        "backend": "pytorch",
        "mode": "compile",
        "precision": "fp32",
        "batch": 1,
        "threads": 1,
    }
    row = dict.fromkeys(PROFILE_COLUMNS)
    return {**row, **cell, "cell_id": cell_id(cell), "status": "skipped", "reason": HOSTILE_REASON}


def make_profile(with_peak: bool = True) -> pd.DataFrame:
    rows = [
        *cell_rows("onnxruntime", "mobilenet_v2", 1),
        *cell_rows("onnxruntime", "standard_conv", 2),
        *cell_rows("tflite", "mobilenet_v2", 3, with_peak),
        *cell_rows("tflite", "standard_conv", 4, with_peak),
        skipped_row(),
    ]
    return pd.DataFrame(rows, columns=list(PROFILE_COLUMNS))


@pytest.fixture(scope="module")
def profile() -> pd.DataFrame:
    return make_profile()


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(PROFILE_COLUMNS)
        for row in frame.to_dict(orient="records"):
            writer.writerow("" if pd.isna(row[c]) else row[c] for c in PROFILE_COLUMNS)


def expected_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Per cell and role: MACs ÷ the time the layer rates imply; shares of the cell's
    time and MACs; the peak from gmacs_per_s and peak_pct."""
    rows = frame[frame["layer"].notna()]
    out = []
    for (cell, role), group in rows.groupby(["cell_id", "role"]):
        timed = group[(group["macs"] > 0) & group["gmacs_per_s"].notna()]
        if timed.empty or role == "unattributed":
            continue
        mine = rows[rows["cell_id"] == cell]
        rate = timed["macs"].sum() / (timed["macs"] / timed["gmacs_per_s"]).sum()
        peak = (mine["gmacs_per_s"] * 100 / mine["peak_pct"]).median()
        out.append(
            {
                "cell_id": cell,
                "backend": group["backend"].iloc[0],
                "model": group["model"].iloc[0],
                "role": role,
                "rate": rate,
                "peak": peak,
                "time": group["ms_p50"].sum() / mine["ms_p50"].sum(),
                "macs": group["macs"].sum() / mine["macs"].sum(),
            }
        )
    return pd.DataFrame(out)


def pct(fraction: float) -> str:
    value = 100 * fraction
    return f"{value:.0f}%" if value >= 10 else f"{value:.2g}%"


def sentence_for(sentences: list[str], backend: str, model: str) -> str:
    found = [s for s in sentences if s.startswith(f"{backend}, {model}, ")]
    assert len(found) == 1, sentences
    return found[0]


# --- loading ---------------------------------------------------------------------------


def test_loader_reads_every_profile_typed(tmp_path: Path, profile: pd.DataFrame) -> None:
    root = tmp_path / "results"
    run = root / DEVICE["device_id"] / DEVICE["run_id"]
    write_csv(run / PROFILE_CSV, profile)
    (root / "x86-laptop" / "broken").mkdir(parents=True)
    (root / "x86-laptop" / "broken" / PROFILE_CSV).write_text("model,backend\nmobilenet_v2\n")
    (root / ".hidden" / "r").mkdir(parents=True)
    write_csv(root / ".hidden" / "r" / PROFILE_CSV, profile)
    problems: list[str] = []
    loaded = load_profiles([root], problems)
    assert list(loaded.columns[: len(FRAME_COLUMNS)]) == list(FRAME_COLUMNS)
    assert len(loaded) == len(profile)
    assert len(problems) == 1
    assert "broken" in problems[0]
    assert "line 2" in problems[0]
    for column in ("macs", "ms_p50", "gmacs_per_s", "peak_pct", "threads", "width"):
        assert loaded[column].dtype == float, column
    for column in TEXT_COLUMNS - {"run_dir"}:
        assert loaded[column].map(lambda v: v is None or isinstance(v, str)).all(), column
    assert set(loaded["run_key"]) == {f"{DEVICE['device_id']}/{DEVICE['run_id']}"}
    assert set(loaded["run_dir"]) == {str(run)}
    np.testing.assert_allclose(loaded["ms_p50"], profile["ms_p50"], rtol=1e-12)
    skipped = loaded[loaded["status"] == "skipped"]
    assert skipped["layer"].tolist() == [None]
    assert skipped["reason"].tolist() == [HOSTILE_REASON]
    # A run folder or the file itself loads the same rows.
    assert len(load_profiles([run])) == len(load_profiles([run / PROFILE_CSV])) == len(profile)


def test_loader_without_profiles_gives_empty_frame(tmp_path: Path) -> None:
    (tmp_path / "dev" / "run").mkdir(parents=True)
    problems: list[str] = []
    loaded = load_profiles([tmp_path, tmp_path / "absent"], problems)
    assert loaded.empty
    assert list(loaded.columns) == list(FRAME_COLUMNS)
    assert problems == [f"{tmp_path / 'absent'}: no such file or folder"]


# --- role shares -----------------------------------------------------------------------


def test_role_shares_sum_to_one_per_cell(profile: pd.DataFrame) -> None:
    shares = role_shares(profile)
    sums = shares.groupby(list(SETTING))[
        ["dw_time_share", "std_time_share", "dw_mac_share", "std_mac_share"]
    ].sum()
    assert len(sums) == 2  # onnxruntime and tflite; the skipped pytorch cell has no shares
    np.testing.assert_allclose(sums.to_numpy(), 1.0, rtol=1e-12)


def test_role_shares_put_the_twin_beside_the_depthwise_network(profile: pd.DataFrame) -> None:
    shares = role_shares(profile).set_index(["backend", "role"])
    rows = profile[profile["layer"].notna()]
    for backend in ("onnxruntime", "tflite"):
        for side, model in (("dw", "mobilenet_v2"), ("std", "standard_conv")):
            cell = rows[(rows["backend"] == backend) & (rows["model"] == model)]
            for role, group in cell.groupby("role"):
                row = shares.loc[(backend, role)]
                assert row[f"{side}_time_share"] == pytest.approx(
                    group["ms_p50"].sum() / cell["ms_p50"].sum()
                )
                assert row[f"{side}_mac_share"] == pytest.approx(
                    group["macs"].sum() / cell["macs"].sum()
                )
                assert row[f"{side}_overhead_ratio"] == cell["overhead_ratio"].iloc[0]
                assert row[f"{side}_model"] == model
        assert pd.isna(shares.loc[(backend, "depthwise 3x3"), "std_time_share"])
        assert pd.isna(shares.loc[(backend, "standard 3x3"), "dw_time_share"])
        assert shares.loc[(backend, "expand 1x1"), ["dw_ms", "std_ms"]].notna().all()
    roles = role_shares(profile)["role"].tolist()
    assert roles[:2] == ["stem", "expand 1x1"]
    assert roles[8] == "unattributed"


# --- the finding -----------------------------------------------------------------------


def test_sentence_names_the_slowest_role_with_its_numbers(profile: pd.DataFrame) -> None:
    sentences = furthest_from_peak(profile)
    assert len(sentences) == 4  # one per profiled cell
    every = expected_rates(profile)
    expected = every[every["time"] >= MIN_TIME_SHARE]  # roles that explain the time
    for (backend, model), roles in expected.groupby(["backend", "model"]):
        worst = roles.loc[roles["rate"].idxmin()]
        text = sentence_for(sentences, backend, model)
        assert f"1 thread: {worst['role']} layers run at " in text
        assert f" {pct(worst['rate'] / worst['peak'])} of the fp32 peak " in text
        assert f"({worst['rate']:.1f} of {worst['peak']:.0f} GMAC/s)" in text
        assert f"take {pct(worst['time'])} of the time for {pct(worst['macs'])} of the MACs" in text
    # The rates make different roles the slowest (onnxruntime's 1280x1000 GEMV classifier,
    # tflite's depthwise layers), so the check above is not one role matching everywhere,
    # and the classifier, the slowest of all in some cells, is too small a share to name.
    worst = expected.loc[expected.groupby("cell_id")["rate"].idxmin(), "role"]
    assert worst.nunique() > 1
    slowest = every.loc[every.groupby("cell_id")["rate"].idxmin(), "role"]
    assert "classifier" in set(slowest) - set(worst)
    assert not any("classifier layers" in sentence for sentence in sentences)


def test_sentence_without_peak_then_from_peaks_frame() -> None:
    frame = make_profile(with_peak=False)
    text = sentence_for(furthest_from_peak(frame), "tflite", "mobilenet_v2")
    assert "no fp32 GEMM peak at 1 thread" in text
    peaks = pd.DataFrame(
        {
            "run_key": [f"{DEVICE['device_id']}/{DEVICE['run_id']}"],
            "device_id": [DEVICE["device_id"]],
            "precision": ["fp32"],
            "threads": [1],
            "gmacs_per_s": [PEAK * 1.5],
        }
    )
    text = sentence_for(furthest_from_peak(frame, peaks), "tflite", "mobilenet_v2")
    worst = expected_rates(frame.assign(peak_pct=frame["gmacs_per_s"] * 100 / (PEAK * 1.5)))
    worst = worst[(worst["backend"] == "tflite") & (worst["model"] == "mobilenet_v2")]
    worst = worst.loc[worst["rate"].idxmin()]
    assert f"({worst['rate']:.1f} of {PEAK * 1.5:.0f} GMAC/s)" in text


# --- plots and the section -------------------------------------------------------------


def rooflines(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    return [e for e in root.iter() if re.fullmatch(r"(profile\d+-)?roofline-\d+", e.get("id", ""))]


def test_plots_are_svg_with_a_horizontal_roofline(profile: pd.DataFrame) -> None:
    bars = share_bars(profile)
    assert bars is not None
    assert ET.fromstring(bars).tag.endswith("svg")
    rates = layer_rates(profile)
    assert rates is not None
    lines = rooflines(rates)
    assert len(lines) == 2  # one panel per backend setting, each with its peak
    for line in lines:
        path = next(e for e in line.iter() if e.tag.endswith("path"))
        ys = [float(y) for y in re.findall(r"[ML] [-\d.]+ ([-\d.]+)", path.get("d"))]
        assert len(ys) == 2
        assert ys[0] == pytest.approx(ys[1])
    assert f"<!-- GEMM peak {PEAK:.0f} GMAC/s -->" in rates
    # Without a peak for tflite its panel has points but no roofline.
    assert len(rooflines(layer_rates(make_profile(with_peak=False)))) == 1


def test_section_has_findings_tables_plots_and_escaped_reasons(profile: pd.DataFrame) -> None:
    page = section_html(profile)
    for table_id in ("profile-share-table", "profile-mac-table", "profile-skipped-table"):
        assert f'id="{table_id}"' in page
    for text in furthest_from_peak(profile):
        assert f"<li>{text}</li>" in page  # no markup in these sentences to escape
    svgs = re.findall(r"<svg .*?</svg>", page, re.S)
    assert len(svgs) == 2
    assert len(rooflines(svgs[1])) == 2  # ids prefixed by the section's figure wrapper
    assert "&lt;b&gt;torch.profiler&lt;/b&gt; &amp; friends" in page
    assert "<b>" not in page
    skipped = re.search(r'id="profile-skipped-table".*?</table>', page).group(0)
    assert "pytorch/compile" in skipped
    assert '<td data-v="skipped">skipped</td>' in skipped


def test_section_without_profiles_says_how_to_get_them() -> None:
    page = section_html(pd.DataFrame(columns=list(FRAME_COLUMNS)))
    assert page.count("<p") == 1
    assert "<code>mobilebench profile</code>" in page
