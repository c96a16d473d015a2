"""Plot the scaling benchmark: ``python benchmarks/plot_scaling.py
RESULTS.json OUT.png``.

RESULTS.json is what ``pytest benchmarks/test_bench_scaling.py
--benchmark-json RESULTS.json`` writes.  OUT.png: time per gradient call
against batch size, log-log, one panel per hidden size; backprop solid,
numerical dashed; compiled, the NumPy backend, PyTorch eager float32 in
their own colours.  The NumPy numerical gradient timed on a subset of the
parameters and scaled up is drawn with hollow markers and says so in the
legend; the whole book's loop, where measured, as crosses.  The title names
the machine (lscpu, from the benchmarks' ``extra_info``).
"""

import json
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after choosing the backend)

ENGINES = {"compiled": ("C0", "mnist_fast compiled"),
           "numpy": ("C1", "NumPy (the book's classes)"),
           "torch": ("C2", "PyTorch eager float32")}
METHODS = ("backprop", "numerical", "numerical whole")


def series(data):
    """The scaling benchmarks of ``data`` (a ``--benchmark-json`` dict) as
    ``{hidden: {(method, engine): [(batch, seconds per whole gradient,
    timed_parameters, parameters), ...]}}``, batches in order; the time is
    the median times ``extra_info["scale"]``.

    Raises
    ------
    ValueError
        ``data`` has no scaling benchmark.
    """
    out = defaultdict(lambda: defaultdict(list))
    for bench in data["benchmarks"]:
        info = bench.get("extra_info", {})
        cell = info.get("scaling")
        if cell is None:
            continue
        out[cell["hidden"]][cell["method"], cell["engine"]].append(
            (cell["batch"], bench["stats"]["median"] * info["scale"],
             info["timed_parameters"], info["parameters"]))
    if not out:
        raise ValueError("no scaling benchmark in the JSON (run "
                         "benchmarks/test_bench_scaling.py --benchmark-json)")
    return {h: {k: sorted(v) for k, v in lines.items()}
            for h, lines in sorted(out.items())}


def machine(data):
    """The machine the benchmarks name (the first that names one), the
    commit and the date of the run where the JSON has them."""
    names = [b["extra_info"]["machine"] for b in data["benchmarks"]
             if b.get("extra_info", {}).get("machine")]
    commit = (data.get("commit_info") or {}).get("id") or ""
    commit = commit if len(commit) == 40 else ""  # "unversioned" outside git
    when = data.get("datetime", "")[:10]
    return ", ".join([names[0] if names else "unknown machine"]
                     + ([f"commit {commit[:10]}"] if commit else [])
                     + ([when] if when else []))


def label(method, engine, points):
    name = ENGINES[engine][1]
    if method == "numerical whole":
        return f"numerical, {name}, every parameter"
    timed = {p[2] for p in points}
    if timed != {p[3] for p in points}:
        return f"{method}, {name}: {min(timed)} parameters timed, scaled to all"
    return f"{method}, {name}"


def style(method, engine):
    colour = ENGINES[engine][0]
    if method == "numerical whole":
        return dict(color="k", marker="x", linestyle="none", markersize=9)
    return dict(color=colour, marker="o" if method == "backprop" else "s",
                linestyle="-" if method == "backprop" else "--",
                markerfacecolor="white" if engine == "numpy" and method == "numerical"
                else colour)


def plot(data, path):
    """Draw ``data`` (a ``--benchmark-json`` dict) into the PNG ``path``."""
    lines = series(data)
    n = len(lines)
    cols = 2 if n > 1 else 1
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4.5 * rows),
                             squeeze=False, sharex=True, sharey=True)
    handles = {}
    for ax, (hidden, by_series) in zip(axes.flat, lines.items()):
        for method in METHODS:
            for engine in ENGINES:
                points = by_series.get((method, engine))
                if not points:
                    continue
                text = label(method, engine, points)
                (handles[text],) = ax.plot([p[0] for p in points],
                                           [p[1] for p in points],
                                           label=text, **style(method, engine))
        ax.set(xscale="log", yscale="log", title=f"784-{hidden}-10")
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("batch size (rows)")
    for ax in axes[:, 0]:
        ax.set_ylabel("seconds per gradient call")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle(f"Time per gradient call (median), numerical vs backprop\n"
                 f"{machine(data)}")
    fig.legend(handles.values(), handles.keys(), loc="lower center",
               ncol=cols, fontsize="small", frameon=False)
    legend_rows = (len(handles) + cols - 1) // cols
    fig.tight_layout(rect=(0, (0.25 * legend_rows + 0.2) / fig.get_figheight(), 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        sys.exit("usage: plot_scaling.py RESULTS.json OUT.png")
    with open(argv[0]) as f:
        data = json.load(f)
    try:
        plot(data, argv[1])
    except ValueError as e:
        sys.exit(f"plot_scaling.py: {e}")


if __name__ == "__main__":
    main()
