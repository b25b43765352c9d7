"""Write the comparison: Markdown table, CSV, JSON, PNG figures and one self-contained HTML page."""

from __future__ import annotations

import base64
import csv
import html
import json
from dataclasses import asdict
from pathlib import Path

from report.collect import LABELS, METRICS, REFERENCE, REFERENCE_NOTE, REFERENCE_TEXT, RunRecord, Summary

FIGURES = {
    "runtime_vs_training_time.png": "Run time and training time per cloud (mean ± std)",
    "data_load_time.png": "Data load time per cloud (mean ± std)",
    "test_loss_per_epoch.png": "Test loss per epoch per cloud (mean over runs)",
    "throughput.png": "Training images per second per cloud (mean ± std)",
}
FIGURE_SIZE = (8, 4.5)
DPI = 100


def _cell(summary: Summary, metric: str) -> str:
    if summary.n == 0:
        return f"missing (0 of {summary.missing})"
    digits = 4 if metric in ("test_loss", "test_accuracy") else 2
    text = f"{summary.mean:.{digits}f} ± {summary.std:.{digits}f} (n={summary.n})"
    return text + (f", {summary.missing} missing" if summary.missing else "")


def markdown_table(summaries: dict[str, dict[str, Summary]]) -> str:
    """Rows = metrics, columns = clouds, like the study's Table 6.1."""
    clouds = list(summaries)
    lines = ["| Metric | " + " | ".join(clouds) + " |", "| --- |" + " --- |" * len(clouds)]
    for metric in METRICS:
        lines.append(f"| {LABELS[metric]} (`{metric}`) | " + " | ".join(_cell(summaries[c][metric], metric) for c in clouds) + " |")
    return "\n".join(lines)


def reference_table() -> str:
    """The study's published figures, unchanged."""
    clouds = list(REFERENCE_TEXT)
    lines = ["| Metric | " + " | ".join(clouds) + " |", "| --- |" + " --- |" * len(clouds)]
    for metric in ("data_load_time", "runtime", "test_loss", "training_time"):
        lines.append(f"| {LABELS[metric]} | " + " | ".join(REFERENCE_TEXT[c][metric] for c in clouds) + " |")
    return "\n".join(lines)


def write_tables(summaries: dict[str, dict[str, Summary]], out: Path, meta: dict) -> None:
    """comparison.md, comparison.csv and comparison.json."""
    (out / "comparison.md").write_text(
        "# Cloud comparison\n\n"
        f"Experiment `{meta['experiment']}`, {meta['runs']} finished runs from {', '.join(meta['sources'])}"
        + (f"; skipped: {', '.join(f'{n} {s}' for s, n in sorted(meta['skipped'].items()))}" if meta["skipped"] else "")
        + ".\n\n## Measured (mean ± standard deviation, n runs)\n\n"
        + markdown_table(summaries)
        + "\n\n## The 2022 study (reference)\n\n"
        + reference_table()
        + f"\n\n{REFERENCE_NOTE}\n"
    )
    with open(out / "comparison.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "cloud", "metric", "n", "mean", "std", "min", "max", "missing"])
        for cloud, per_metric in summaries.items():
            for metric, s in per_metric.items():
                writer.writerow(["measured", cloud, metric, s.n, s.mean, s.std, s.min, s.max, s.missing])
        for cloud, values in REFERENCE.items():
            for metric, value in values.items():
                writer.writerow(["study-2022", cloud, metric, 1, value, "", value, value, 0])
    document = {
        **meta,
        "measured": {cloud: {m: asdict(s) for m, s in per.items()} for cloud, per in summaries.items()},
        "reference": {"note": REFERENCE_NOTE, "clouds": REFERENCE},
    }
    (out / "comparison.json").write_text(json.dumps(document, indent=2) + "\n")


def _bars(ax, clouds: list[str], series: list[tuple[str, list[Summary]]]) -> None:
    width = 0.8 / len(series)
    for k, (label, summaries) in enumerate(series):
        positions = [i + (k - (len(series) - 1) / 2) * width for i in range(len(clouds))]
        means = [s.mean if s.n else 0.0 for s in summaries]
        errors = [s.std if s.n else 0.0 for s in summaries]
        ax.bar(positions, means, width, yerr=errors, capsize=4, label=label)
    ax.set_xticks(range(len(clouds)), clouds)


def write_figures(summaries: dict[str, dict[str, Summary]], runs: list[RunRecord], out: Path) -> list[Path]:
    """The four PNG figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clouds = list(summaries)
    paths = []

    def save(fig, name: str, ylabel: str) -> None:
        fig.axes[0].set_title(FIGURES[name])
        fig.axes[0].set_ylabel(ylabel)
        fig.tight_layout()
        fig.savefig(out / name, dpi=DPI)
        plt.close(fig)
        paths.append(out / name)

    fig, ax = plt.subplots(figsize=FIGURE_SIZE)
    _bars(ax, clouds, [("run time", [summaries[c]["runtime"] for c in clouds]), ("training time", [summaries[c]["training_time"] for c in clouds])])
    ax.legend()
    save(fig, "runtime_vs_training_time.png", "seconds")

    fig, ax = plt.subplots(figsize=FIGURE_SIZE)
    _bars(ax, clouds, [("data load time", [summaries[c]["data_load_time"] for c in clouds])])
    save(fig, "data_load_time.png", "seconds")

    fig, ax = plt.subplots(figsize=FIGURE_SIZE)
    for cloud in clouds:
        per_epoch: dict[int, list[float]] = {}
        for run in (r for r in runs if r.cloud == cloud):
            for step, value in run.test_loss_per_epoch:
                per_epoch.setdefault(step, []).append(value)
        if per_epoch:
            steps = sorted(per_epoch)
            ax.plot(steps, [sum(per_epoch[s]) / len(per_epoch[s]) for s in steps], marker="o", label=cloud)
    ax.set_xlabel("epoch")
    ax.legend()
    save(fig, "test_loss_per_epoch.png", "mean cross-entropy per test image")

    fig, ax = plt.subplots(figsize=FIGURE_SIZE)
    _bars(ax, clouds, [("training images/s", [summaries[c]["train_images_per_second"] for c in clouds])])
    save(fig, "throughput.png", "images per second")
    return paths


def write_html(out: Path, figures: list[Path]) -> Path:
    """report.html: the tables and every figure embedded, no external file needed."""
    markdown = (out / "comparison.md").read_text()
    blocks, table = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            table.append(line)
            continue
        if table:
            rows = [[cell.strip() for cell in row.strip("|").split("|")] for row in table if not set(row) <= set("|- ")]
            head, body = rows[0], rows[1:]
            blocks.append(
                "<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
                + "</table>"
            )  # fmt: skip
            table = []
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            blocks.append(f"<h{level}>{html.escape(line.lstrip('# '))}</h{level}>")
        elif line.strip():
            blocks.append(f"<p>{html.escape(line)}</p>")
    for figure in figures:
        data = base64.b64encode(figure.read_bytes()).decode()
        blocks.append(f'<figure><img alt="{figure.name}" src="data:image/png;base64,{data}"><figcaption>{html.escape(FIGURES[figure.name])} ({figure.name})</figcaption></figure>')
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Cloud comparison</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse;margin:1rem 0}"
        "td,th{border:1px solid #bbb;padding:.3rem .6rem}img{max-width:100%}</style></head><body>"
        + "\n".join(blocks)
        + "</body></html>\n"
    )
    path = out / "report.html"
    path.write_text(page)
    return path
