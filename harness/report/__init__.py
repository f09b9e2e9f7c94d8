"""Reports from run folders: tidy frames, merged CSV/JSON, one self-contained HTML page, compare.

Entry points for the CLI (``mobilebench report`` and ``mobilebench compare``);
nothing here prints, everything returns data. No ML framework is imported.

- ``harness.report.load.load_runs(paths: Sequence[Path]) -> tuple[pd.DataFrame,
  pd.DataFrame, dict[str, dict], list[str]]``: ``(results, samples, envs, problems)``.
  Each path is a run folder, a folder holding run folders at any depth (e.g.
  ``results/``), or a pytest-benchmark JSON file. Unreadable inputs become one
  line each in ``problems`` and are skipped.
- ``harness.report.load.write_merged(results: pd.DataFrame, out_dir: Path) ->
  tuple[Path, Path]``: writes ``out_dir/results.csv`` and ``out_dir/results.json``.
- ``harness.report.html.render_report(results: pd.DataFrame, samples: pd.DataFrame,
  envs: Mapping[str, Mapping[str, Any]], out: Path, *, problems: Sequence[str] = (),
  title: str = "mobilebench report") -> Path``: writes one offline HTML file.
- ``harness.report.compare.compare_runs(base_dir: Path, new_dir: Path,
  threshold_pct: float = 5.0) -> CompareResult``: raises ValueError (one line)
  when a path does not hold exactly one run.
- ``harness.report.compare.exit_code(result: CompareResult) -> int``: 1 when any
  cell regressed (or broke: ok in base, failed/timeout in new), else 0.
- ``harness.report.compare.compare_rows(result: CompareResult) -> list[dict[str, Any]]``:
  keys ``cell, verdict, base_p50_ms, new_p50_ms, ratio, ci95_low, ci95_high,
  change_pct, flags``, worst first, then cells found in one run only.
  ``CompareResult.counts() -> dict[str, int]`` gives a one-line summary;
  ``CompareResult.problems`` lists inputs skipped while loading.
"""
