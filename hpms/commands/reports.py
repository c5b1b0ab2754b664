"""`hpms reports`: list, show in the terminal, export to csv/tsv/json/xlsx/ods/html."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from hpms.commands._common import JsonOpt, emit_table, info, service_context

app = typer.Typer(
    help="Reports and exports: appointments, no-shows, reminders, utilization, revenue, A/R, KPIs.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Report name (see `hpms reports list`).")]
From = Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD, today, yesterday, +N/-N).")]
To = Annotated[str | None, typer.Option("--to", help="Last day, inclusive.")]
Period = Annotated[
    str | None,
    typer.Option(
        "--period",
        help="today, yesterday, this-week, last-week, this-month, last-month, this-year, last-year, YYYY-MM or YYYY.",
    ),
]
Location = Annotated[str | None, typer.Option("--location", help="Location id or name (dates in its time zone).")]
Provider = Annotated[str | None, typer.Option("--provider", help="Provider id, NPI or name.")]
Payer = Annotated[str | None, typer.Option("--payer", help="X12 payer id or name.")]
Months = Annotated[int | None, typer.Option("--months", help="Recall list: not seen for this many months.")]
By = Annotated[
    str | None,
    typer.Option(
        "--by",
        help="Group rows by: day, week, month (default), provider, type or "
        "location (appointments-volume); day, week, month, payer, "
        "provider or code (payments, adjustments).",
    ),
]
AsOf = Annotated[str | None, typer.Option("--as-of", help="A/R aging: as of this day (default: the end of the range).")]


def _params(start, end, period, location, provider, payer, months=None, as_of=None, by=None) -> dict:
    return dict(
        start=start,
        end=end,
        period=period,
        location=location,
        provider=provider,
        payer=payer,
        months=months,
        as_of=as_of,
        by=by,
    )


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List the reports: name, description, parameters.

    Example: hpms reports list
    """
    from hpms.services import reports

    with service_context(readonly=True) as ctx:
        rows = [
            {
                "name": r.name,
                "title": r.title,
                "description": r.description,
                "parameters": list(r.params),
                "columns": [c.header for c in r.columns],
            }
            for r in reports.all_reports(ctx)
        ]
    emit_table(
        rows,
        [("name", "Name"), ("description", "Description"), ("parameters", "Parameters")],
        as_json=as_json,
        title="Reports",
    )


@app.command("show")
def show(
    name: NameArg,
    start: From = None,
    end: To = None,
    period: Period = None,
    location: Location = None,
    provider: Provider = None,
    payer: Payer = None,
    months: Months = None,
    as_of: AsOf = None,
    by: By = None,
    chart: Annotated[bool, typer.Option("--chart", help="Also draw the trend in the terminal.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show a report in the terminal (a table on a TTY, tab-separated otherwise).

    Example: hpms reports show no-shows --period last-month --location "Riverside Main"
    """
    from hpms.services import reports
    from hpms.services.reports.export import json_value, text_value

    with service_context() as ctx:
        rep, params, rows = reports.run(
            ctx, name, **_params(start, end, period, location, provider, payer, months, as_of, by)
        )
        data = list(rows)
    if as_json:
        import json

        sys.stdout.write(
            json.dumps(
                [{c.key: json_value(v, c.kind) for c, v in zip(rep.columns, r)} for r in data],
                indent=2,
                ensure_ascii=False,
            )
            + "\n"
        )
        return
    rows_text = [{c.key: text_value(v, c.kind) for c, v in zip(rep.columns, r)} for r in data]
    emit_table(
        rows_text,
        [(c.key, c.header) for c in rep.columns],
        as_json=False,
        title=f"{rep.title}, {params.start} to {params.end}" + (f", {params.location}" if params.location else ""),
    )
    if chart and rep.chart and data and sys.stdout.isatty():
        import plotext as plt

        xi = [c.key for c in rep.columns].index(rep.chart[0])
        yi = [c.key for c in rep.columns].index(rep.chart[1])
        plt.clear_figure()
        plt.plot(list(range(len(data))), [float(r[yi] or 0) for r in data])
        plt.xticks(
            list(range(len(data)))[:: max(1, len(data) // 8)], [str(r[xi]) for r in data][:: max(1, len(data) // 8)]
        )
        plt.title(rep.title)
        plt.plotsize(None, 15)
        plt.show()
    elif chart and not rep.chart:
        info(f"{rep.name} has no trend to chart")


@app.command("export")
def export(
    name: NameArg,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv, tsv, json, xlsx, ods or html (default: from -o, else csv).")
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "-o",
            "--output",
            help="File to write; may hold {date}, {from}, {to}. csv/tsv/json/html go to stdout without it.",
        ),
    ] = None,
    start: From = None,
    end: To = None,
    period: Period = None,
    location: Location = None,
    provider: Provider = None,
    payer: Payer = None,
    months: Months = None,
    as_of: AsOf = None,
    by: By = None,
    as_json: JsonOpt = False,
) -> None:
    """Export a report (written to a temp name and renamed: a failed export leaves no file).

    Example: hpms reports export appointments-by-day --period last-month --format xlsx -o "visits-{from}-{to}.xlsx"
    """
    from hpms.services import reports
    from hpms.services.platform.localtime import local_now
    from hpms.services.reports.export import guess_format, resolve_output, write

    f = guess_format(fmt, out)
    with service_context() as ctx:
        rep, params, rows = reports.run(
            ctx, name, **_params(start, end, period, location, provider, payer, months, as_of, by)
        )
        path = resolve_output("out", out, f, params, local_now(ctx.now(), params.tz).date())
        n = write(path, f, rep, params, rows, sys.stdout)
    if path is not None:
        if as_json:
            import json

            sys.stdout.write(
                json.dumps(
                    {
                        "report": rep.name,
                        "format": f,
                        "path": str(path),
                        "rows": n,
                        "from": params.start.isoformat(),
                        "to": params.end.isoformat(),
                    }
                )
                + "\n"
            )
        else:
            info(f"{rep.name}: {n} rows written to {path}")
