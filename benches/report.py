"""The results: a table per workload (console and Markdown), an SVG bar chart, results.json."""
import html
import json
import statistics
from dataclasses import dataclass, field

MIB = 2**20
HEADER = ["engine", "wall s", "CPU s", "peak MiB", "etl/peer wall", "etl/peer mem", "check"]


@dataclass
class EngineResult:
    engine: str
    samples: list   # the timed runs' measure.Sample
    note: str       # what the check found

    @property
    def wall(self):
        return statistics.median(s.wall for s in self.samples)

    @property
    def cpu(self):
        return statistics.median(s.cpu for s in self.samples)

    @property
    def peak_mib(self):
        """The highest peak of the timed runs."""
        return max(s.peak_bytes for s in self.samples) / MIB


@dataclass
class WorkloadResult:
    key: str
    title: str
    engines: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # what went wrong in a default and was worked around

    def rows(self):
        """The table's rows as strings; ratios are etl's median (or peak) over the engine's."""
        etl = next((e for e in self.engines if e.engine == "etl"), None)
        rows = []
        for e in self.engines:
            is_etl = e.engine.startswith("etl")
            wall_ratio = "—" if is_etl or etl is None else f"{etl.wall / e.wall:.2f}"
            mem_ratio = "—" if is_etl or etl is None else f"{etl.peak_mib / e.peak_mib:.2f}"
            rows.append([e.engine, f"{e.wall:.3f}", f"{e.cpu:.3f}", f"{e.peak_mib:.1f}", wall_ratio, mem_ratio, e.note])
        return rows


def console_table(result):
    rows = [HEADER] + result.rows()
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = [f"{result.key} {result.title}"]
    for row in rows:
        cells = [cell.ljust(w) if i in (0, len(row) - 1) else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    lines += [f"  note: {note}" for note in result.notes]
    return "\n".join(lines)


def markdown_table(result):
    lines = [f"### {result.key}: {result.title}", "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in result.rows()]
    lines += [""] + [f"- {note}" for note in result.notes]
    return "\n".join(lines)


def markdown(results, meta, w5_output):
    lines = ["# etl benchmark results", "",
             f"Command: `{meta['command']}`  ",
             f"Machine: {meta['machine']}  ",
             f"Versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}", "",
             f"Each engine ran every workload as a whole separate process: one warm-up (whose answer "
             f"was checked against DuckDB's), then {meta['runs']} timed runs, engines alternating. "
             "wall s and CPU s (user + sys of the process and all its descendants) are medians; "
             "peak MiB is the highest peak resident memory of the process tree over the timed runs "
             "(benches/README.md says how it is measured). "
             "etl/peer below 1 means etl took less.", ""]
    lines += [markdown_table(r) + "\n" for r in results]
    if w5_output is not None:
        lines += ["### W5: `etl cost` over 1,000 Parquet files (benches/cost_estimate.py)", "",
                  "```", w5_output.rstrip(), "```", ""]
    lines += ["![wall time and peak memory per engine](results.svg)", ""]
    return "\n".join(lines)


def results_json(results, meta, w5_output):
    return json.dumps({
        **meta,
        "workloads": [{
            "key": r.key, "title": r.title, "notes": r.notes,
            "engines": [{"engine": e.engine, "note": e.note,
                         "median_wall_s": e.wall, "median_cpu_s": e.cpu, "peak_mib": e.peak_mib,
                         "runs": [{"wall_s": s.wall, "cpu_s": s.cpu, "peak_mib": s.peak_bytes / MIB}
                                  for s in e.samples]}
                        for e in r.engines],
        } for r in results],
        "w5": w5_output,
    }, indent=2)


# ---- SVG: per workload, one bar per engine for wall time and one for peak memory ----------

ROW, LABEL_W, BAR_W, GAP = 22, 220, 300, 90
WIDTH = LABEL_W + 2 * (BAR_W + GAP)


def _text(x, y, text, anchor="start", weight="normal", size=12):
    return (f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}">'
            f'{html.escape(text)}</text>')


def _panel(result, y):
    """The SVG elements of one workload, starting at height y; returns (elements, new y)."""
    parts = [_text(0, y + 14, f"{result.key}: {result.title}", weight="bold", size=13)]
    y += 24
    columns = [("median wall (s)", [e.wall for e in result.engines], "{:.2f} s"),
               ("peak memory (MiB)", [e.peak_mib for e in result.engines], "{:.0f} MiB")]
    for c, (heading, _, _) in enumerate(columns):
        parts.append(_text(LABEL_W + c * (BAR_W + GAP), y + 12, heading, weight="bold"))
    y += ROW
    for i, engine in enumerate(result.engines):
        colour = "#e4572e" if engine.engine.startswith("etl") else "#4c78a8"
        parts.append(_text(LABEL_W - 8, y + i * ROW + 14, engine.engine, anchor="end"))
        for c, (_, values, fmt) in enumerate(columns):
            x = LABEL_W + c * (BAR_W + GAP)
            width = BAR_W * values[i] / (max(values) or 1)
            parts.append(f'<rect x="{x}" y="{y + i * ROW + 3}" width="{width:.1f}" height="{ROW - 6}" fill="{colour}"/>')
            parts.append(_text(x + width + 4, y + i * ROW + 14, fmt.format(values[i])))
    return parts, y + len(result.engines) * ROW + 16


def svg(results):
    parts, y = [], 0
    for result in results:
        panel, y = _panel(result, y)
        parts += panel
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{y}" '
            f'font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(parts) + "\n</svg>\n")
