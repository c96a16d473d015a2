"""The ``mnist-fast`` command (also ``python -m mnist_fast``).

Subcommands: ``train`` (the book's training run), ``gradcheck`` (the
book's gradient check), ``bench`` (numerical vs backprop timing),
``predict`` (a digit from an image file), ``show`` (what a saved model
gets right and wrong) and ``info`` (``build_info()``).
``mnist-fast SUBCOMMAND --help`` describes each.

Exit status: 0 on success, 1 on an error (one line on stderr) or a failed
gradient check, 2 on a usage error, 130 when stopped by Ctrl-C.
"""

import argparse
import json
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from . import __version__, book
from .backends import BACKENDS
from .console import never_refuse
from .files import check_writable
from .gradcheck import FLOOR, RTOL, gradient_check
from .info import build_info
from .kernels import ENV_SIMD, SIMD_CHOICES
from .mnist import N_CLASSES, load_mnist
from .seeding import MAX_SEED
from .threads import ENV_NUM_THREADS, MAX_THREADS, ThreadsUnavailable
from .train import GRADIENTS, TrainingDiverged, train
from .two_layer_net import TwoLayerNet
from .validation import MAX_INDEX, positive_int, real_number

PROG = "mnist-fast"
#: Exit status of a run stopped by Ctrl-C (128 + SIGINT), as shells use.
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A mistake in the command line or its files: one line, exit 1."""


class UsageError(Exception):
    """An option's value that only the run can check (it depends on the
    data): a usage error, as argparse's own, exit 2."""


# -- argument types: parse, then check with mnist_fast.validation -------------
#
# Each option is checked against the limits of the API argument it becomes
# (the same constants), so that a value out of range is a usage error naming
# the option, never the API's error naming its argument.

def _number(text):
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")


def _checked(check, name, **limits):
    """An argparse ``type`` that parses a number and checks it with ``check``."""
    def parse(text):
        try:
            return check(_number(text), name, **limits)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = name  # argparse names the type in some messages
    return parse


def _count(name, minimum=1, maximum=None):
    return _checked(positive_int, name, minimum=minimum, maximum=maximum)


def _positive_real(name):
    return _checked(real_number, name, minimum=0.0, strict=True)


# -- helpers -------------------------------------------------------------------

def _say(*lines):
    for line in lines:
        print(line, flush=True)


def _seconds(s):
    """A duration for people: '24.6 s', '1.31 ms', '412 µs'."""
    if s >= 1:
        return f"{s:.1f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def _times(ratio):
    """A speed-up for people: '4,267x', '1.14x'."""
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.2f}x"


def _sizes(net):
    return f"{net.input_size}-{net.hidden_size}-{net.output_size}"


def _hidden(net):
    """Which network it is, in the words of ``--activation``."""
    return f"{net.activation} hidden layer"


def _machine(info, thread_policy=None):
    """One line about the machine and build, from ``build_info()``."""
    policy = thread_policy or info["thread_policy"]
    openmp = f"OpenMP, {policy}" if info["openmp"] else "no OpenMP (1 thread)"
    compiled = "compiled" if info["compiled"] else "NOT compiled (NumPy only)"
    return (f"machine: {info['platform']}, {info['cpu_count']} CPU(s) | "
            f"mnist_fast {info['version']} {compiled}, {openmp} | "
            f"NumPy {info['numpy_version']}, Python {info['python_version']}")


def _mnist_net(args, x_train, seed):
    return TwoLayerNet(x_train.shape[1], args.hidden, N_CLASSES,
                       activation=args.activation, backend=args.backend,
                       seed=seed, num_threads=getattr(args, "threads", None))


# -- train ----------------------------------------------------------------------

def _output_paths(args):
    """Check where results go before a long run, not after it: each folder
    exists (--plot-dir is created) and a file can really be written there
    (:func:`~mnist_fast.files.check_writable`).  Returns the plot folder."""
    for option, value, check in (("--plot-dir", args.plot_dir, _check_plot_dir),
                                 ("--save", args.save, _check_save)):
        if value is None:
            continue
        try:
            check(Path(value))
        except OSError as exc:  # a folder on the way that cannot be searched
            raise UserError(f"{option}: cannot look at {value} "
                            f"({_reason(exc)})") from None
    return None if args.plot_dir is None else Path(args.plot_dir)


def _check_plot_dir(plot_dir):
    if plot_dir.exists() and not plot_dir.is_dir():
        raise UserError(f"--plot-dir: {plot_dir} exists and is not a folder")
    try:
        plot_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--plot-dir: cannot create the folder {plot_dir} "
                        f"({_reason(exc)})") from None
    _check_writable("--plot-dir", plot_dir / NETWORK_PICTURES[0],
                    f"into the folder {plot_dir}")


def _check_save(save):
    if save.is_dir():
        raise UserError(f"--save: {save} is a folder; give a file name "
                        "such as model.npz")
    if save.exists() and not save.is_file():
        raise UserError(f"--save: {save} exists and is not a regular file "
                        "(a device, a pipe...); give a file name such as "
                        "model.npz")
    folder = save.absolute().parent
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--save: {folder} is not a folder")
    if not folder.is_dir():
        raise UserError(f"--save: the folder {folder} does not exist")
    _check_writable("--save", save, save)


def _reason(exc):
    """What went wrong in an OSError, without the file name it repeats."""
    return exc.strerror or str(exc)


def _check_writable(option, path, what):
    """UserError naming ``option`` unless ``path`` can be written; ``what``
    says where, for the message."""
    try:
        check_writable(path)
    except OSError as exc:
        raise UserError(f"{option}: cannot write {what} ({_reason(exc)})") from None


#: The pictures of a trained network that --plot-dir gets (train and show).
NETWORK_PICTURES = ("weights.png", "misclassified.png", "confusion.png")


def _network_pictures(net, x_test, t_test, plot_dir):
    """Write the three pictures of ``net`` on the test set into ``plot_dir``."""
    from .plot import plot_confusion, plot_misclassified, plot_weights

    paths = [plot_dir / name for name in NETWORK_PICTURES]
    plot_weights(net, paths[0])
    plot_misclassified(net, x_test, t_test, paths[1])
    plot_confusion(net, x_test, t_test, paths[2])
    return paths


class _KeepTheModel:
    """Ctrl-C around ``train()``, so that a trained model is never lost.

    Before the first step a Ctrl-C stops the command at once, as usual.
    During the steps ``train`` handles it itself (it stops after the
    current block).  Once a step has run (``train`` calls this object as
    its ``callback``), a Ctrl-C that comes outside the steps -- as
    ``train`` returns, or while the model is written -- is held: the block
    goes on to save the model, and leaving it raises the held
    ``KeyboardInterrupt``.  A Ctrl-C after the block stops the accuracy pass
    and the plots, but the model is already saved.

    Only in the main thread, and not when Ctrl-C is ignored (a job started
    in the background).
    """

    def __init__(self):
        self.trained = self.held = False
        self._previous = None

    def __call__(self, history):
        self.trained = True

    def _handler(self, signum, frame):
        if not self.trained:
            raise KeyboardInterrupt
        self.held = True

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, kind, exc, tb):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        if self.held and kind is None:
            raise KeyboardInterrupt
        return False


def _save(args, net):
    net.save(args.save)
    _say(f"saved the model to {args.save} "
         f"(mnist-fast predict {args.save} IMAGE)")


def _plots(net, history, plot_dir, test_set):
    from .plot import plot_accuracy, plot_loss

    title = f"{_sizes(net)}, {_hidden(net)}, seed {history.seed}"
    plot_loss(history, plot_dir / "loss.png", title=title)
    plot_accuracy(history, plot_dir / "accuracy.png", title=title)
    pictures = _network_pictures(net, *test_set, plot_dir)
    _say(f"wrote {plot_dir / 'loss.png'}, {plot_dir / 'accuracy.png'}, "
         + ", ".join(map(str, pictures)))


def cmd_train(args):
    """``mnist-fast train``: the book's training run.

    The model is saved (``--save``) as soon as the steps end, before the
    accuracy pass and the plots, and a Ctrl-C from then on cannot stop the
    save (:class:`_KeepTheModel`).
    """
    plot_dir = _output_paths(args)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    (x_train, t_train), (x_test, t_test) = load_mnist()
    net = _mnist_net(args, x_train, seed)
    epoch = max(x_train.shape[0] // args.batch_size, 1)
    _say(f"{PROG} train: {_sizes(net)}, {args.iters} iterations, batch "
         f"{args.batch_size}, lr {args.lr:g}, {args.gradient} gradient",
         f"{_hidden(net)}, backend {net.backend}, seed {seed} (repeat with "
         f"--seed {seed}); "
         f"{x_train.shape[0]} training images, an epoch is {epoch} iterations")
    bar = not args.no_progress and sys.stdout.isatty()
    saved = False
    try:
        with _KeepTheModel() as keep:
            try:
                history = train(net, x_train, t_train, x_test, t_test,
                                iters_num=args.iters,
                                batch_size=args.batch_size,
                                learning_rate=args.lr, gradient=args.gradient,
                                seed=seed, verbose=True, progress=bar,
                                callback=keep)
            except TrainingDiverged as exc:
                raise UserError(str(exc)) from None
            if args.save is not None:
                _save(args, net)
                saved = True
        train_acc = net.accuracy(x_train, t_train)
        test_acc = net.accuracy(x_test, t_test)
        if plot_dir is not None:
            _plots(net, history, plot_dir, (x_test, t_test))
    except KeyboardInterrupt:
        if not saved:
            raise
        raise KeyboardInterrupt(f"the model is saved in {args.save}") from None
    rate = history.iterations / history.wall_time if history.wall_time else 0.0
    rate = f"{rate:.0f}" if rate >= 10 else f"{rate:.2g}"
    what = (f"interrupted (Ctrl-C) after {history.iterations} of {args.iters} "
            "iterations" if history.interrupted else "done")
    _say(f"{what}: train acc {train_acc:.4f}, test acc {test_acc:.4f} | "
         f"{history.iterations} iterations in {history.wall_time:.1f} s "
         f"({rate} it/s)")
    return EXIT_INTERRUPTED if history.interrupted else 0


# -- gradcheck ------------------------------------------------------------------

def cmd_gradcheck(args):
    """``mnist-fast gradcheck``: the book's numerical-vs-backprop check."""
    (x_train, t_train), _ = load_mnist()
    try:
        positive_int(args.samples, "samples", maximum=x_train.shape[0])
    except ValueError as exc:
        raise UsageError(f"argument --samples: {exc} ({x_train.shape[0]} is "
                         "the number of training images)") from None
    net = _mnist_net(args, x_train, args.seed)
    start = time.perf_counter()
    checks = gradient_check(net, x_train[:args.samples], t_train[:args.samples],
                            rtol=args.rtol, floor=args.floor)
    elapsed = time.perf_counter() - start
    _say(f"gradient check: numerical gradient (central differences, h = {book.H:g}) "
         "vs backprop",
         f"network {_sizes(net)}, seed {args.seed}, backend {net.backend}, "
         f"{_hidden(net)}; the first {args.samples} training image(s); "
         f"{_seconds(elapsed)}",
         "",
         f"{'param':<6} {'mean |diff|':>12} {'max |diff|':>12} "
         f"{'max rel err':>12}  result")
    for c in checks.values():
        _say(f"{c.name:<6} {c.mean_abs:>12.2e} {c.max_abs:>12.2e} "
             f"{c.max_rel:>12.2e}  {'PASS' if c.passed else 'FAIL'}")
    failed = [c.name for c in checks.values() if not c.passed]
    _say("",
         f"tolerance: max rel err <= {args.rtol:g}, where rel err = "
         f"|num - back| / max(|num|, |back|, {args.floor:g})",
         f"FAIL: {', '.join(failed)} differ(s) by more than the tolerance"
         if failed else "PASS: the backprop gradient agrees with the "
         "numerical one")
    return 1 if failed else 0


# -- bench ----------------------------------------------------------------------

def _bench_table(r):
    methods = ("numerical_gradient", "gradient")
    width = 24
    lines = [
        f"numerical vs backprop gradient: time per batch of {r['batch_size']} "
        f"MNIST rows, {'-'.join(map(str, r['layer_sizes']))} "
        f"({r['n_params']:,} parameters), {r['activation']} hidden layer, "
        f"median of {r['repeats']}",
        "",
        f"{'backend':<16}{'numerical_gradient':>{width}}{'gradient':>{width}}"
        f"{'backprop speed-up':>{width}}",
    ]
    notes = set()
    for backend, res in r["results"].items():
        cells = []
        for m in methods:
            marks = "*" if res[m]["estimated"] else ""
            notes.update(marks)
            cells.append(f"{_seconds(res[m]['seconds'])} {marks:<2}")
        speedup = _times(r["speedups"]["backprop_vs_numerical"][backend])
        lines.append(f"{backend:<16}{cells[0]:>{width}}{cells[1]:>{width}}"
                     f"{speedup:>{width}}")
    if "cython_vs_numpy" in r["speedups"]:
        s = r["speedups"]["cython_vs_numpy"]
        lines.append(f"{'cython vs numpy':<16}"
                     + "".join(f"{_times(s[m]):>{width - 3}}   " for m in methods).rstrip())
    lines.append("")
    if "*" in notes:
        timed = min(res["numerical_gradient"]["params_timed"]
                    for res in r["results"].values())
        lines.append(f"* estimated: the central differences of {timed} of the "
                     f"{r['n_params']:,} parameters timed and scaled up "
                     "(--full times them all)")
    lines.append(_machine(r["build_info"], r["thread_policy"]))
    if r["peak_rss_mib"] is not None:
        lines.append(f"peak RSS: {r['peak_rss_mib']:.0f} MiB")
    return lines


def _learners_table(r):
    from .bench_book import CALLS

    pc = r["per_call"]
    lines = ["", "where the book's readers work"
             + (", with one other CPU-bound process running" if r["loaded"] else "")
             + ": per call (batch 100; accuracy over all 70,000 images)", "",
             f"{'classes':<16}" + "".join(f"{c:>12}" for c in CALLS)]
    for classes, label in (("mnist_fast", "mnist_fast"), ("book", "the book's")):
        lines.append(f"{label:<16}" + "".join(f"{_seconds(pc[classes][c]):>12}"
                                             for c in CALLS))
    lines.append(f"{'speed-up':<16}" + "".join(
        f"{_times(pc['book'][c] / pc['mnist_fast'][c]):>12}" for c in CALLS))
    if r["script"]:
        s = r["script"]
        lines += ["", f"the book's {r['script_name']}.py (backprop, "
                  "np.random.seed(0)), whole: "
                  f"mnist_fast {_seconds(s['mnist_fast'])}, the book's classes "
                  f"{_seconds(s['book'])} ({_times(s['book'] / s['mnist_fast'])}); "
                  "printed lines " + ("the same" if r["script_lines_equal"]
                                      else "DIFFERENT"),
                  f"  last line: {r['script_last_line']}"]
    return lines


def cmd_bench(args):
    """``mnist-fast bench``: numerical vs backprop, per backend."""
    from .bench import benchmark

    if args.book or args.loaded:
        from .bench_book import learners_benchmark

        if not args.json:
            _say("timing the book's calls and script (about a minute)...")
        learners = learners_benchmark(loaded=args.loaded,
                                      num_threads=args.threads,
                                      repeats=args.repeats,
                                      activation=args.activation)
    if not args.json:
        _say("timing (a few seconds)..." if not args.full else
             "timing every parameter (--full): this takes minutes...")
    result = benchmark(repeats=args.repeats, full=args.full,
                       num_threads=args.threads, activation=args.activation)
    if args.book or args.loaded:
        result["learners"] = learners
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _say(*_bench_table(result))
        if args.book or args.loaded:
            _say(*_learners_table(learners))
    return 0


# -- predict --------------------------------------------------------------------

def cmd_predict(args):
    """``mnist-fast predict``: the digit in each image file."""
    from .image import SIZE, load_digit

    net = TwoLayerNet.load(args.model, backend=args.backend)
    if net.input_size != SIZE * SIZE:
        raise UserError(f"{args.model}: the model takes {net.input_size} "
                        f"inputs, but an image gives {SIZE * SIZE} (28x28)")
    top = min(args.top, net.output_size)
    failed = 0
    for path in args.images:
        try:
            x = load_digit(path)
        except (OSError, ValueError) as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr, flush=True)
            failed += 1
            continue
        y = net.predict(x)[0]
        best = np.argsort(-y, kind="stable")[:top]
        _say(f"{path}: " + ", ".join(f"{d} ({y[d]:.1%})" for d in best))
    return 1 if failed else 0


# -- show -----------------------------------------------------------------------

def cmd_show(args):
    """``mnist-fast show``: what a saved network gets right and wrong."""
    from .plot import confusion_matrix

    plot_dir = _output_paths(args)
    net = TwoLayerNet.load(args.model, backend=args.backend)
    if (net.input_size, net.output_size) != (784, N_CLASSES):
        raise UserError(f"{args.model}: a {_sizes(net)} network; show needs "
                        f"784 inputs and {N_CLASSES} classes (MNIST)")
    _, (x_test, t_test) = load_mnist()
    counts = confusion_matrix(net, x_test, t_test)
    correct = int(np.trace(counts))
    _say(f"{args.model}: {_sizes(net)}, {_hidden(net)}, test accuracy "
         f"{correct / len(t_test):.4f} "
         f"({correct} of {len(t_test)} test images)", "",
         "per class: " + ", ".join(
             f"{k} {counts[k, k] / counts[k].sum():.1%}" for k in range(N_CLASSES)),
         "", "confusion matrix (rows: the true digit, columns: the predicted one)",
         "      " + "".join(f"{k:>6}" for k in range(N_CLASSES)),
         *(f"{k:>6}" + "".join(f"{n:>6}" for n in counts[k])
           for k in range(N_CLASSES)))
    if plot_dir is not None:
        pictures = _network_pictures(net, x_test, t_test, plot_dir)
        _say("", "wrote " + ", ".join(map(str, pictures)))
    return 0


# -- info -----------------------------------------------------------------------

def _grouped(by_activation):
    """``{activation: methods}`` as ``{methods: [activations]}``, in order."""
    groups = {}
    for activation, methods in by_activation.items():
        groups.setdefault(", ".join(methods), []).append(activation)
    return groups


def cmd_info(args):
    """``mnist-fast info``: ``build_info()`` for people."""
    info = build_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    if info["compiled"]:
        by_activation = info["compiled_methods_by_activation"]
        compiled = "yes: " + "; ".join(
            f"{methods or 'nothing'} ({' and '.join(nets)} nets)"
            for methods, nets in _grouped(by_activation).items())
    else:
        compiled = (f"no: every method runs the NumPy reference "
                    f"({info['not_compiled']})")
    openmp = (f"yes: {info['thread_policy']} by default "
              f"(--threads N or ${ENV_NUM_THREADS} fixes the count), "
              f"{info['max_threads']} at most" if info["openmp"]
              else "no: the kernels run on 1 thread")
    rows = [
        ("compiled kernels", compiled),
        ("SIMD kernels", f"{info['simd']} (set ${ENV_SIMD} to choose: "
                         f"{', '.join(SIMD_CHOICES)})" if info["compiled"]
                         else "none (not compiled)"),
        ("OpenMP", openmp),
        ("debug build", "yes (bounds checks on, slow)" if info["debug_build"] else "no"),
        ("BLAS", ", ".join(f"{b['library']} ({b['num_threads']} threads by "
                           "default; the NumPy backend follows the thread "
                           "policy)" for b in info["blas"]) or "none found"),
        ("versions", f"Cython {info['cython_version']}, NumPy "
                     f"{info['numpy_version']}, Python {info['python_version']}"),
        ("platform", f"{info['platform']} ({info['machine']}), "
                     f"{info['cpu_count']} CPU(s)"),
    ]
    _say(f"mnist_fast {info['version']}",
         *(f"  {name:<18}{value}" for name, value in rows))
    return 0


# -- the parser -------------------------------------------------------------------

def _add_activation_option(p):
    p.add_argument("--activation", choices=book.ACTIVATIONS, default="sigmoid",
                   help="the hidden layer: 'sigmoid' (the book's ch. 4 "
                        "network) or 'relu' (ch. 5's)")


def _add_network_options(p, seed_default):
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="'cython' (compiled), 'numpy' (the book's code) or "
                        "'auto' (compiled when built)")
    _add_activation_option(p)
    p.add_argument("--hidden", type=_count("hidden"), default=book.HIDDEN_SIZE,
                   metavar="N", help="hidden layer size")
    p.add_argument("--seed", type=_count("seed", minimum=0, maximum=MAX_SEED),
                   default=seed_default, metavar="N",
                   help="seed of the initial weights" + (
                       " and of the batch sampling: the book's run after "
                       "np.random.seed(N) (default: a fresh one, printed)"
                       if seed_default is None else
                       ", as the book's after np.random.seed(N)"))


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default, unless it has none worth showing."""

    def _get_help_string(self, action):
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def _add_threads_option(p):
    p.add_argument("--threads", type=_count("threads", maximum=MAX_THREADS),
                   default=None,
                   metavar="N", help="threads of the compiled kernels "
                   "(default: $MNIST_FAST_NUM_THREADS, else one thread or "
                   "all per call, whichever is faster now)")


def build_parser():
    """The ``argparse`` parser of ``mnist-fast``."""
    fmt = _HelpFormatter
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=fmt,
        description="The two-layer MNIST network of 'Deep Learning from "
                    "Scratch' (ch. 4-5), compiled: train it, check its "
                    "gradient, time it, and read digits with it.",
        epilog=f"'{PROG} COMMAND --help' describes a command.")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "train", formatter_class=fmt,
        help=f"train the network as the book does ({book.INPUT_SIZE}-"
             f"{book.HIDDEN_SIZE}-{book.OUTPUT_SIZE}, {book.ITERS_NUM} "
             "iterations)",
        description="Train the book's network by mini-batch SGD on MNIST and "
                    "print the train and test accuracy at each epoch (the "
                    "book's 'train acc, test acc | ...' line). Ctrl-C stops "
                    "at the end of the current block of steps (up to 64) "
                    "and still prints the "
                    "summary and writes the plots and the model (exit 130). "
                    "The model is saved as soon as the steps end; a Ctrl-C "
                    "after that stops the accuracy pass and the plots, not "
                    "the saving.")
    p.add_argument("--gradient", choices=GRADIENTS, default="backprop",
                   help="how the gradient is computed ('numerical' is the "
                        "book's slow central differences)")
    _add_network_options(p, None)
    p.add_argument("--iters", type=_count("iters", minimum=0), default=book.ITERS_NUM,
                   metavar="N", help="iterations (mini-batch updates)")
    p.add_argument("--batch-size", type=_count("batch-size", maximum=MAX_INDEX),
                   default=book.BATCH_SIZE,
                   metavar="N", help="images per mini-batch")
    p.add_argument("--lr", type=_positive_real("lr"), default=book.LEARNING_RATE,
                   metavar="RATE", help="learning rate")
    _add_threads_option(p)
    p.add_argument("--plot-dir", metavar="DIR", default=None,
                   help="write the loss and accuracy figures to "
                        "DIR/loss.png and DIR/accuracy.png, and the "
                        "trained network's pictures (as 'show' does)")
    p.add_argument("--save", metavar="PATH", default=None,
                   help="save the trained model to PATH (.npz), for "
                        f"'{PROG} predict' or TwoLayerNet.load")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it is shown only on a terminal)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "gradcheck", formatter_class=fmt,
        help="compare the backprop gradient with the numerical one",
        description="The book's gradient check (ch. 5): the numerical and "
                    "the backprop gradient of a seeded network on the first "
                    "training images, compared per parameter. Exit status 1 "
                    "when a parameter fails.")
    _add_network_options(p, 0)
    p.add_argument("--samples", type=_count("samples"), default=3,
                   metavar="N", help="training images used")
    p.add_argument("--rtol", type=_checked(real_number, "rtol", minimum=0.0),
                   default=RTOL, metavar="TOL",
                   help="largest relative error that passes")
    p.add_argument("--floor", type=_positive_real("floor"), default=FLOOR,
                   metavar="F", help="magnitude below which differences are "
                   "measured against F instead")
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser(
        "bench", formatter_class=fmt,
        help="time numerical vs backprop gradient on each backend",
        description="Time numerical_gradient and gradient on a batch of 100 "
                    "MNIST rows (784-50-10) for each available backend: "
                    "median time, speed-ups, machine and memory. The NumPy "
                    "numerical gradient (tens of seconds) is estimated from a "
                    "subset of the parameters unless --full.")
    p.add_argument("--repeats", type=_count("repeats"), default=5, metavar="N",
                   help="timed repeats per measurement (the median is shown)")
    p.add_argument("--full", action="store_true",
                   help="time the NumPy numerical gradient over all "
                        "parameters (tens of seconds per repeat)")
    p.add_argument("--book", action="store_true",
                   help="also time gradient, loss, predict and accuracy per "
                        "call and the book's training script, beside the "
                        "book's own classes (ch. 5's with --activation relu)")
    p.add_argument("--loaded", action="store_true",
                   help="as --book, with one other CPU-bound process running "
                        "(started and stopped by the benchmark)")
    _add_activation_option(p)
    _add_threads_option(p)
    p.add_argument("--json", action="store_true",
                   help="print the results as JSON")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "predict", formatter_class=fmt,
        help="read a handwritten digit from an image file",
        description="Recognise the digit in each image (PNG, JPEG, ...) with "
                    "a model saved by 'train --save'. The picture is made "
                    "like MNIST's digits: greyscale, white on black, fitted "
                    "into 20x20 and centred by its centre of mass in 28x28; "
                    "a 28x28 white-on-black image is used as it is.")
    p.add_argument("model", metavar="MODEL", help="model file (.npz)")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image file(s)")
    p.add_argument("--top", type=_count("top"), default=1, metavar="K",
                   help="show the K most probable digits")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="backend that runs the model")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "show", formatter_class=fmt,
        help="per-class accuracy, the confusion matrix and pictures of a model",
        description="Per-class accuracy of a saved model on the 10,000 MNIST "
                    "test images and its confusion matrix, as text; with "
                    "--plot-dir also DIR/weights.png (the first-layer weights "
                    "as 28x28 tiles), DIR/misclassified.png and "
                    "DIR/confusion.png.")
    p.add_argument("model", metavar="MODEL", help="model file (.npz)")
    p.add_argument("--plot-dir", metavar="DIR", default=None,
                   help="write the three pictures into DIR")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="backend that runs the model")
    p.set_defaults(func=cmd_show, save=None)

    p = sub.add_parser(
        "info", formatter_class=fmt,
        help="what was built: compiled kernels, OpenMP, versions",
        description="build_info() for people: paste it into bug reports.")
    p.add_argument("--json", action="store_true", help="print it as JSON")
    p.set_defaults(func=cmd_info)
    for p in sub.choices.values():
        p.set_defaults(parser=p)  # for the usage errors of UsageError
    return parser


def main(argv=None):
    """Run ``mnist-fast`` with ``argv`` (default ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.
    """
    never_refuse()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        args.parser.error(str(exc))
    except KeyboardInterrupt as exc:
        kept = f" ({exc})" if str(exc) else ""
        print(f"{PROG}: interrupted{kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `mnist-fast info | head -1`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except MemoryError as exc:
        what = f" ({exc})" if str(exc) else ""
        print(f"{PROG}: error: not enough memory{what}: a smaller --hidden or "
              "--batch-size needs less", file=sys.stderr)
        return 1
    except ThreadsUnavailable as exc:
        # num_threads comes from --threads here: say it as it was typed
        message = (exc.message(f"--threads {exc.wanted}")
                   if exc.chosen == "num_threads" else str(exc))
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    except (UserError, OSError, ValueError, RuntimeError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
