"""Reports from run folders: tidy frames, merged CSV/JSON, one self-contained HTML page, compare.

Entry points for the CLI (``mobilebench report`` and ``mobilebench compare``)
and for the end of ``mobilebench run``; nothing here prints, everything returns
data. No ML framework is imported.

- ``harness.report.write.write_report(paths: Sequence[Path], out: Path, *,
  merged: bool = False, title: str = "mobilebench report") -> Written``: loads
  the inputs and writes the page to ``out`` (plus ``results.csv``/``results.json``
  beside it with ``merged``). ``Written`` has ``page`` (None when no row loaded,
  then nothing is written), ``merged``, ``rows``, ``runs`` and ``problems``.
- ``harness.report.load.load_runs(paths: Sequence[Path]) -> tuple[pd.DataFrame,
  pd.DataFrame, dict[str, dict], list[str]]``: ``(results, samples, envs, problems)``.
  Each path is a run folder, a folder holding run folders at any depth (e.g.
  ``results/``), or a pytest-benchmark JSON file. Unreadable inputs become one
  line each in ``problems`` and are skipped.
- ``harness.report.load.load_frames(paths: Sequence[Path]) -> Frames``: the same
  with each env.json as tidy frames: ``results``, ``samples``, ``runs`` (one row
  per run), ``peaks`` (one row per run, precision and thread count: the GEMM
  peak and the library that set it, or NaN and the reason it was not measured),
  ``versions`` (one row per run, one column per package) and ``problems``.
- ``harness.report.load.write_merged(results: pd.DataFrame, out_dir: Path) ->
  tuple[Path, Path]``: writes ``out_dir/results.csv`` and ``out_dir/results.json``.
- ``harness.report.html.render_report(frames: Frames, out: Path, *, title: str =
  "mobilebench report") -> Path``: writes one offline HTML file (with a precision
  section when any row is not fp32).
- ``harness.report.compare.compare_runs(base_dir: Path, new_dir: Path,
  threshold_pct: float = 5.0) -> CompareResult``: raises ValueError (one line)
  when a path does not hold exactly one run.
- ``harness.report.compare.exit_code(result: CompareResult) -> int``: 1 when any
  cell regressed (or broke: ok in base, failed/timeout in new), else 0.
- ``harness.report.compare.compare_rows(result: CompareResult) -> list[dict[str, Any]]``:
  keys ``cell, precision, verdict, base_p50_ms, new_p50_ms, ratio, ci95_low,
  ci95_high, change_pct, base_top1_agree, new_top1_agree, top1_change,
  base_rel_l2_err, new_rel_l2_err, flags`` (flags as one ``"; "``-joined string),
  worst first, then cells found in one run only. Cells match on the full key,
  precision included; a top1_agree drop above 0.05 is flagged (not failing).
  ``CompareResult.counts() -> dict[str, int]`` gives a one-line summary;
  ``CompareResult.problems`` lists inputs skipped while loading.
"""
