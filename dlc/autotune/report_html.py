"""The HTML tuning report: one self-contained page (inline CSS and SVG, no scripts, nothing
fetched), so it can be mailed, archived or opened offline.

Sections: the task table; per model, its estimated latency over the tuning time; the error
classes (a bar chart and one example message per class and task); per task, a convergence
plot (each trial's median and the best so far) and the winning schedule as Python code
for the schedule API.
"""

from __future__ import annotations

import html
import json
import math

from dlc.autotune.report import (
    ERROR_NAMES,
    TABLE_COLUMNS,
    Summary,
    TaskSummary,
    format_duration,
    format_errors,
    format_seconds,
    model_line,
    plural,
    table_rows,
    trace_to_python,
)
from dlc.errors import ScheduleError

BLUE, GREY, RED, ORANGE = "#1f77b4", "#9aa5b1", "#d62728", "#ff7f0e"
CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { padding: 2px 10px; border-bottom: 1px solid #ddd; text-align: right;
         white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th.text, td.text { text-align: left; white-space: normal; }
pre { background: #f5f5f5; padding: 0.6em; overflow-x: auto; }
svg.plot { display: block; margin: 0.5em 0 1em; background: #fff; }
svg text { font: 11px sans-serif; fill: #333; }
section.task { border-top: 1px solid #ccc; margin-top: 1.5em; }
.note { color: #555; }
"""


def render(summary: Summary, title: str) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{e(title)}</h1>", f"<p>{_header(summary)}</p>", "<h2>Tasks</h2>",
             _table(TABLE_COLUMNS, table_rows(summary), text=(0, 4)),
             '<p class="note">% peak: an estimate (threads x FMA units (1 or 2) x 2 flops '
             "x float32 lanes x the clock /proc/cpuinfo reports; over 100%: the cores run faster, "
             "turbo). to 95%: trials until the best so far was within "
             "95% of the best speed. best, speed-up: from the confirmation (the leaders "
             "and the default measured again side by side at the end of a run) where there "
             "is one.</p>"]
    if summary.models:
        parts.append("<h2>Models</h2>")
        for m in summary.models:
            parts.append(f"<p>{e(model_line(m))}</p>")
            parts.append(_model_plot(m))
    parts.append("<h2>Errors</h2>")
    parts.append(_errors(summary))
    parts.append("<h2>Task details</h2>")
    parts.extend(_task_section(t) for t in summary.tasks)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _header(summary: Summary) -> str:
    text = f"{plural(summary.records, 'record')}, {plural(len(summary.tasks), 'task')}"
    if summary.first_time and summary.last_time:
        seconds = (summary.last_time - summary.first_time).total_seconds()
        text += (f", {summary.first_time:%Y-%m-%d %H:%M} to {summary.last_time:%H:%M} "
                 f"({format_duration(seconds)})")
    return html.escape(text) + "".join(f"<br>target: {html.escape(t)}" for t in summary.targets)


def _table(header, rows, text=()) -> str:
    """An HTML table; the columns numbered in ``text`` are left-aligned and may wrap."""
    def cell(tag, k, value):
        kind = ' class="text"' if k in text else ""
        return f"<{tag}{kind}>{html.escape(str(value))}</{tag}>"

    out = ["<table>", "<tr>" + "".join(cell("th", k, h) for k, h in enumerate(header)) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(cell("td", k, c) for k, c in enumerate(row)) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _model_plot(m) -> str:
    timed = all(elapsed is not None for _, elapsed, _ in m.timeline)
    points = [(elapsed if timed else trial, estimate) for trial, elapsed, estimate
              in m.timeline if estimate is not None]
    if not points:
        return '<p class="note">no estimate yet: a task has neither a default nor a tuned ' \
               "measurement</p>"
    trial, elapsed, _ = m.timeline[m.third_trials - 1]
    return chart([("estimated latency", BLUE, "step", points)], css="plot model",
                 x_label="tuning time" if timed else "trial",
                 y_label="model latency", x_format=format_duration if timed else _integer,
                 label=m.name, x_integer=not timed,
                 vline=(elapsed if timed else trial, "first third of the trials"))


def _errors(summary: Summary) -> str:
    totals: dict[str, int] = {}
    for t in summary.tasks:
        for cls, n in t.errors.items():
            totals[cls] = totals.get(cls, 0) + n
    if not totals:
        return "<p>No errors: every trial built, ran and gave the right result.</p>"
    order = [c for c in ERROR_NAMES if c in totals] + sorted(set(totals) - set(ERROR_NAMES))
    out = [bars([(c, totals[c]) for c in order], css="plot errors")]
    rows = [(t.name, cls, message[:300]) for t in summary.tasks
            for cls, message in t.messages.items()]
    out.append(_table(("task", "class", "first message"), rows, text=(0, 1, 2)))
    return "\n".join(out)


def _task_section(t: TaskSummary) -> str:
    e = html.escape
    out = [f'<section class="task" id="task-{e(t.key)}">',
           f"<h3>{e(t.name)}{' [' + e(t.target) + ']' if t.target else ''}</h3>",
           f"<p>key {e(t.key)}; {t.trials} trials; errors: {e(format_errors(t.errors))}; "
           f"best {e(format_seconds(t.best_seconds))}; default schedule "
           f"{e(format_seconds(t.default_seconds))}; occurrences: "
           f"{e(', '.join(f'{m} {n}' for m, n in t.weights.items()) or '-')}</p>"]
    trials = [(trial, median) for trial, median, _ in t.history if median is not None]
    best = [(trial, so_far) for trial, _, so_far in t.history if so_far is not None]
    failed = [trial for trial, median, _ in t.history if median is None]
    if best:
        out.append(chart([("trial", GREY, "dots", trials), ("best so far", BLUE, "step", best)],
                         css="plot convergence", x_label="trial", y_label="latency",
                         x_format=_integer, label=t.name, marks=failed,
                         x_range=(1, max(t.trials, 2)), x_integer=True))
    else:
        out.append('<p class="note">no trial succeeded</p>')
    if t.best_record is not None:
        config = t.best_record.get("config")
        if config:
            out.append(f"<p>winning configuration: <code>{e(json.dumps(config, sort_keys=True))}"
                       "</code></p>")
        if t.best_record.get("template") == "conv_algorithm":  # a choice, no schedule
            out.append("</section>")
            return "\n".join(out)
        try:
            code = trace_to_python(t.best_record.get("trace") or {})
        except ScheduleError as err:
            code = f"# the trace cannot be printed: {err}"
        out.append("<p>winning schedule, for <code>sch = dlc.tir.schedule.Schedule([...])"
                   "</code> of the task's tensors:</p>")
        out.append(f'<pre><code class="schedule">{e(code or "# no primitives")}</code></pre>')
    out.append("</section>")
    return "\n".join(out)


# -- SVG -----------------------------------------------------------------------------------
W, H, LEFT, RIGHT, TOP, BOTTOM = 640, 240, 70, 30, 24, 36


def chart(series, *, css: str, x_label: str, y_label: str, x_format, label: str = "",
          marks=(), x_range=None, x_integer: bool = False, vline=None) -> str:
    """A plot of ``series`` [(name, colour, "dots" | "step", [(x, y)])], y in seconds
    (log-scaled when it spans more than 10x); ``marks`` are x values of failed trials,
    drawn as red ticks on the x axis; ``vline`` an (x, label) drawn as a dashed line."""
    xs = [x for *_, pts in series for x, _ in pts] + list(marks)
    ys = [y for *_, pts in series for _, y in pts if y > 0]
    x0, x1 = x_range or (min(xs), max(xs))
    if x1 <= x0:
        x1 = x0 + 1
    x1 += (x1 - x0) * 0.03  # the last step stays visible
    y0, y1 = min(ys), max(ys)
    log = y1 / y0 > 10
    fy = math.log10 if log else float
    lo, hi = fy(y0), fy(y1)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    lo, hi = lo - pad, hi + pad
    if not log:
        lo = max(lo, 0.0)

    def sx(x):
        return LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT)

    def sy(y):
        return TOP + (hi - fy(y)) / (hi - lo) * (H - TOP - BOTTOM)

    e = html.escape
    out = [f'<svg class="{css}" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" '
           f'aria-label="{e(y_label)} against {e(x_label)}: {e(label)}">',
           f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" '
           f'height="{H - TOP - BOTTOM}" fill="none" stroke="#888"/>']
    for value in _ticks(x0, x1, integer=x_integer):
        x = sx(value)
        out.append(f'<line x1="{x:.1f}" y1="{H - BOTTOM}" x2="{x:.1f}" y2="{H - BOTTOM + 4}" '
                   'stroke="#888"/>')
        out.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">'
                   f"{e(x_format(value))}</text>")
    y_ticks = ([10 ** k for k in _ticks(lo, hi, integer=True)] if log else _ticks(lo, hi))
    for value in y_ticks:
        if value <= 0 and log:
            continue
        y = sy(value)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" '
                   'stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f"{e(format_seconds(value) if value > 0 else '0')}</text>")
    out.append(f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 4}" text-anchor="middle">'
               f"{e(x_label)}</text>")
    out.append(f'<text x="{LEFT}" y="{TOP - 8}">{e(y_label)}{" (log scale)" if log else ""}'
               "</text>")
    legend_x = W - RIGHT
    for name, colour, kind, pts in reversed(series):
        out.append(f'<text x="{legend_x}" y="{TOP - 8}" text-anchor="end" fill="{colour}" '
                   f'style="fill: {colour}">{e(name)}</text>')
        legend_x -= 8 + 7 * len(name)
        if kind == "dots":
            out.extend(f'<circle class="trial" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" '
                       f'fill="{colour}"/>' for x, y in pts if y > 0)
        elif pts:
            d = f"M{sx(pts[0][0]):.1f},{sy(pts[0][1]):.1f}"
            for x, y in pts[1:]:
                d += f" H{sx(x):.1f} V{sy(y):.1f}"
            d += f" H{sx(x1):.1f}"
            out.append(f'<path class="{kind}" d="{d}" fill="none" stroke="{colour}" '
                       'stroke-width="2"/>')
    if vline is not None:
        x = sx(vline[0])
        out.append(f'<line class="vline" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" '
                   f'y2="{H - BOTTOM}" stroke="#555" stroke-dasharray="4 3"/>')
        out.append(f'<text x="{x + 4:.1f}" y="{TOP + 12}">{e(vline[1])}</text>')
    for x in marks:
        out.append(f'<line class="failed" x1="{sx(x):.1f}" y1="{H - BOTTOM - 6}" '
                   f'x2="{sx(x):.1f}" y2="{H - BOTTOM}" stroke="{RED}" stroke-width="2"/>')
    out.append("</svg>")
    return "\n".join(out)


def bars(items, *, css: str) -> str:
    """A horizontal bar chart of [(label, count)]."""
    e = html.escape
    height = TOP + 22 * len(items) + 8
    most = max(n for _, n in items) or 1
    width = W - 160 - 60
    out = [f'<svg class="{css}" width="{W}" height="{height}" viewBox="0 0 {W} {height}" '
           'role="img" aria-label="trials by error class">']
    for k, (name, n) in enumerate(items):
        y = TOP + 22 * k
        w = max(1.0, n / most * width)
        out.append(f'<text x="150" y="{y + 13}" text-anchor="end">{e(name)}</text>')
        out.append(f'<rect class="bar" x="160" y="{y}" width="{w:.1f}" height="16" '
                   f'fill="{ORANGE if name == "stopped_early" else RED}"/>')
        out.append(f'<text x="{160 + w + 6:.1f}" y="{y + 13}">{n}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _ticks(lo: float, hi: float, integer: bool = False) -> list[float]:
    """About five round values between lo and hi."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / 5
    step = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * step:
            step *= m
            break
    if integer:
        step = max(1, round(step))
    first = math.ceil(lo / step) * step
    n = int(math.floor((hi - first) / step + 1e-9)) + 1
    return [round(first + k * step, 12) for k in range(max(n, 0))]


def _integer(value: float) -> str:
    return f"{value:g}"
