"""``python -m report``: the study's cloud comparison, computed from MLflow."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from report.collect import ReportError, collect, parse_date, stack_tracking_uri, summarise

STATUSES = ("FINISHED", "FAILED", "KILLED", "RUNNING")


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m report",
        description="Compare clouds on the trainer's MLflow metrics: Markdown/CSV/JSON tables, PNG figures, one HTML page.",
        epilog="exit codes: 0 written, 2 bad options, 3 a tracking server unreachable, 4 no experiment or no matching runs",
    )
    parser.add_argument("--tracking-uri", action="append", default=[], metavar="URI",
                        help="tracking server to read (repeatable; default: MLFLOW_TRACKING_URI)")  # fmt: skip
    parser.add_argument("--stack", action="append", default=[], metavar="NAME",
                        help="Pulumi stack whose mlflowUrl output to read (repeatable; needs the Pulumi CLI)")  # fmt: skip
    parser.add_argument("--experiment", default=os.environ.get("MLFLOW_EXPERIMENT_NAME") or "alexnet-cifar10", help="experiment (default %(default)s)")
    parser.add_argument("--status", action="append", choices=STATUSES, help="run statuses to include (default FINISHED)")
    parser.add_argument("--training-run", help="only runs with this trainingRun tag")
    parser.add_argument("--since", type=parse_date, help="only runs started at or after this ISO date/time (UTC)")
    parser.add_argument("--until", type=parse_date, help="only runs started at or before this ISO date/time (UTC)")
    parser.add_argument("--output", type=Path, default=Path("report-out"), help="output folder (default %(default)s)")
    parser.add_argument("--log-to-mlflow", action="store_true",
                        help="also log the report as artifacts of a run in the 'cloud-comparison' experiment of the first server")  # fmt: skip
    return parser


def write_report(args: argparse.Namespace) -> tuple[Path, str]:
    """Collect, summarise and write; return the output folder and the measured table."""
    from report import render

    uris = list(args.tracking_uri) + [stack_tracking_uri(stack) for stack in args.stack]
    if not uris and os.environ.get("MLFLOW_TRACKING_URI"):
        uris = [os.environ["MLFLOW_TRACKING_URI"]]
    if not uris:
        raise ReportError("no source: pass --tracking-uri URI or --stack NAME, or set MLFLOW_TRACKING_URI", 2)
    found = collect(uris, args.experiment, tuple(args.status or ("FINISHED",)), args.training_run, args.since, args.until)
    summaries = summarise(found.runs)
    # Write into a fresh folder beside the target, then swap it in: a failure leaves no half report.
    args.output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{args.output.name}-", dir=args.output.parent))
    try:
        meta = {"experiment": args.experiment, "sources": uris, "runs": len(found.runs), "skipped": found.skipped}
        render.write_tables(summaries, staging, meta)
        figures = render.write_figures(summaries, found.runs, staging)
        render.write_html(staging, figures)
        if args.output.exists():
            shutil.rmtree(args.output)
        staging.rename(args.output)
        args.output.chmod(0o755)  # mkdtemp made it private
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if args.log_to_mlflow:
        import mlflow

        mlflow.set_tracking_uri(uris[0])
        mlflow.set_experiment("cloud-comparison")
        with mlflow.start_run(run_name=f"comparison-{args.experiment}"):
            mlflow.log_params({"experiment": args.experiment, "sources": ",".join(uris), "runs": len(found.runs)})
            mlflow.log_artifacts(str(args.output))
    return args.output, render.markdown_table(summaries)


def main(argv: list[str] | None = None) -> int:
    """Run the command; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        output, table = write_report(args)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    print(table)
    print(f"\nwrote {output}/: comparison.md, comparison.csv, comparison.json, report.html and 4 figures")
    return 0
