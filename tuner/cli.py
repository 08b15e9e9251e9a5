"""`tuner`: thin commands over the library. Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import json
import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

from . import missing_extra

if _missing := missing_extra():
    # A core-only install (`pip install less-tuner`): `tuner` (this module's main) says what to
    # install in one line instead of failing on the imports below with a traceback.
    raise SystemExit(f"Error: {_missing}")

import typer  # noqa: E402 - the imports of the extra come after the check above
import typer.core
from rich import box
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import sampler
from sampler import SamplerError

from .cache import DEFAULT_BYTES
from .errors import StorageError, StudyMismatchError, TunerError, UsageError
from .objectives import objective_help
from .samplers import SAMPLERS
from .spec import MAX_COUNT, load_spec
from .storage import STORAGE_ENV, mask_url, open_storage, resolve_url

# Piped output (a log, CI) gets room for the tables' params column instead of rich's 80 columns.
out = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)
err = Console(stderr=True)

StorageOpt = typer.Option(None, "--storage", envvar=STORAGE_ENV,
                          help="SQLAlchemy URL of the study database (default: a SQLite file in "
                               "studies/db/).")


def fail(error: Exception) -> None:
    code = getattr(error, "exit_code", 1)
    # escaped: a message may hold brackets (`pip install 'less-tuner[dashboard]'`), not markup
    err.print(f"[bold red]Error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


# click's UsageError as typer raises it (typer.BadParameter's base): click's own where typer
# uses click, typer's copy of click where it bundles one (typer 0.29 does).
_CLICK_USAGE_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
# `tuner` alone: the help, which click (>= 8.2) raises as a usage error
_NO_ARGS_IS_HELP = getattr(sys.modules[_CLICK_USAGE_ERROR.__module__], "NoArgsIsHelpError", ())


class _Commands(typer.core.TyperGroup):
    """The `tuner` group, whose command-line parsing mistakes (a value that is not a number, a
    missing or unknown option or command) are reported by :func:`fail` in one line, not in click's
    boxed usage panel."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        with _usage_in_one_line():
            return super().parse_args(ctx, args)

    def invoke(self, ctx: typer.Context) -> Any:  # parses the subcommand's arguments, runs it
        with _usage_in_one_line():
            return super().invoke(ctx)


@contextmanager
def _usage_in_one_line() -> Iterator[None]:
    try:
        yield
    except _NO_ARGS_IS_HELP:
        raise
    except _CLICK_USAGE_ERROR as error:
        where = f"`{error.ctx.command_path} --help`" if error.ctx else "--help"
        fail(UsageError(f"{error.format_message().rstrip('.')}; see {where}."))


app = typer.Typer(cls=_Commands, add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False,
                  help="Tune LESS (and baseline) samplers of diffusion LMs per task and model.")


@contextmanager
def errors() -> Iterator[None]:
    """Turn the library's errors into one line and an exit code; Ctrl-C into exit 130."""
    import optuna

    # The CLI reports a failed trial itself, in one line; Optuna's warning would add a traceback.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (TunerError, SamplerError) as error:
        fail(error)
    except (SQLAlchemyError, optuna.exceptions.StorageInternalError) as error:
        # e.g. a read-only SQLite file, a dropped connection (Optuna wraps the driver's error)
        cause = error.__cause__ if isinstance(error.__cause__, SQLAlchemyError) else error
        reason = str(getattr(cause, "orig", None) or cause).strip().splitlines()[0]
        fail(StorageError(f"the study database refused the operation: {mask_url(reason)}; check "
                          "that it is writable and reachable (--storage)."))
    except KeyboardInterrupt:
        err.print("Interrupted.")
        raise typer.Exit(130)


@contextmanager
def bar(description: str, total: int | None = None) -> Iterator[Any]:
    """A progress bar (``total``: known from the start, else from the first callback); yields a
    callback ``(done, total)``."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as progress:
        task = progress.add_task(description, total=total)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


@contextmanager
def spinner(what: str) -> Iterator[None]:
    """A spinner saying what runs, for a step with nothing to count (loading a model)."""
    with err.status(what, spinner="dots"):
        yield


def _load_model(runner) -> None:
    """Load the runner's model under a spinner: seconds for a bundled model, minutes for an 8B."""
    with spinner(f"loading model {runner.evaluation.model_name} ..."):
        runner.evaluation.model  # noqa: B018 (a cached property: this loads it)


def _fit(table: Table) -> RenderableType:
    """``table`` as it is where its columns fit the console; where they do not (80 columns), the
    same rows without borders, each column as wide as its longest word, and the params column in
    a table of its own below. No cell is ever cut: a column still too narrow folds its text."""
    for column in table.columns:
        column.overflow = "fold"
    # the narrowest the table can be without cutting a word, measured unconstrained (a
    # measurement within the console's width is clamped to it)
    if Measurement.get(out, out.options.update_width(10_000), table).minimum <= out.width:
        return table
    headers = [str(column.header) for column in table.columns]
    rows = [[str(cell) for cell in row]
            for row in zip(*(list(column.cells) for column in table.columns))]
    where = headers.index("params") if "params" in headers else None
    keep = [i for i in range(len(headers)) if i != where]
    widths = {i: max(len(word) for text in [headers[i], *(row[i] for row in rows)]
                     for word in text.split() or [""]) for i in keep}
    fixed = sum(widths.values()) + len(keep) - 1 <= out.width
    compact = Table(title=table.title, caption=table.caption, box=box.SIMPLE_HEAD,
                    padding=(0, 0), show_edge=False)
    for i in keep:
        compact.add_column(headers[i], justify=table.columns[i].justify, overflow="fold",
                           width=widths[i] if fixed else None)
    for row in rows:
        compact.add_row(*(row[i] for i in keep))
    if where is None:
        return compact
    params = Table(box=box.SIMPLE_HEAD, padding=(0, 0), show_edge=False)
    params.add_column(headers[0], justify="right")
    params.add_column("params", overflow="fold")
    for row in rows:
        params.add_row(row[0], row[where])
    return Group(compact, "", params)


def _arm_of(study):
    """The function naming each trial's strategy (family member) in ``study``, and whether the
    study searched several (then tables show a strategy column)."""
    from .spec import StudySpec
    from .study import trial_arm

    data = study.user_attrs.get("spec")
    spec = StudySpec.from_dict(data) if data else None
    several = bool(spec and spec.strategy == "auto")
    return (lambda t: trial_arm(spec, t) if spec else t.user_attrs.get("arm", "-")), several


def _front_table(study, title: str) -> RenderableType:
    from .study import format_values, front, searched_values, trial_metrics
    from .validate import held_out

    arm_of, several = _arm_of(study)
    table = Table(title=title, caption=HELD_OUT_TIMING)
    for column in ("trial", *(["strategy"] if several else []), "accuracy", "mean NFE",
                   "speed-up", "quality/step", "held-out acc", "held-out NFE", "held-out tok/s",
                   "held-out s/example", "params"):
        table.add_column(column, justify="left" if column in ("params", "strategy") else "right")
    for t in front(study.trials) or front(study.trials, feasible_only=False):
        m, v = trial_metrics(t), held_out(study, t.number) or {}
        params = format_values(searched_values(t))
        table.add_row(str(t.number), *([arm_of(t)] if several else []), f"{m['accuracy']:.1%}",
                      f"{m['mean_nfe']:.2f}", f"{m['speedup']:.2f}x",
                      f"{m['quality_per_step']:.3f}",
                      f"{v['accuracy']:.1%}" if v else "-", f"{v['mean_nfe']:.2f}" if v else "-",
                      *_speed(v), params)
    return _fit(table)


def _arms_table(study) -> RenderableType | None:
    """Each strategy's own front inside a study over several: its trials, front, best accuracy,
    iso-accuracy NFE and best quality per step, so the published rule is read beside the winner.
    None for a one-strategy study."""
    from .pareto import ISO_ACCURACY_PTS, by_arm, front, iso_accuracy_nfe, trial_metrics
    from .study import format_values, searched_values
    from .validate import best_of

    arm_of, several = _arm_of(study)
    if not several:
        return None
    base = (study.user_attrs.get("baseline_tune") or {}).get("accuracy")
    table = Table(title=f"each strategy's own front in {study.study_name}",
                  caption=f"iso-accuracy NFE: the lowest mean NFE at accuracy >= full-step "
                          f"({base:.1%}) - {ISO_ACCURACY_PTS} pt; tuning split" if base is not None
                  else "tuning split")
    for column in ("strategy", "trials", "front (trials)", "best accuracy", "iso-acc NFE",
                   "best quality/step", "params of the best"):
        table.add_column(column, justify="left" if column in ("strategy", "params of the best")
                         else "right")
    rows = []
    for arm, trials in by_arm(study.trials, arm_of).items():
        done = [t for t in trials if trial_metrics(t).get("complete")]
        own = front(trials) or front(trials, feasible_only=False)
        iso = iso_accuracy_nfe(trials, base) if base is not None else None
        best = best_of(trials)  # the trial `export --best` would pick among this arm's
        rows.append((trial_metrics(best)["quality_per_step"] if best else -1.0, [
            arm, str(len(trials)), ", ".join(str(t.number) for t in own) or "-",
            f"{max(trial_metrics(t)['accuracy'] for t in done):.1%}" if done else "-",
            f"{trial_metrics(iso)['mean_nfe']:.2f} (#{iso.number})" if iso else "-",
            f"{trial_metrics(best)['quality_per_step']:.3f} (#{best.number})" if best else "-",
            format_values(searched_values(best)) if best else "-"]))
    for _, row in sorted(rows, key=lambda r: -r[0]):
        table.add_row(*row)
    return _fit(table)


HELD_OUT_TIMING = ("held-out tok/s and s/example: the held-out split decoded without forward-pass "
                   "reuse (`tuner validate`), the production cost")
TRIAL_TIMING = ("* timed with forward passes reused across the study's trials: not the production "
                "cost (the held-out figures of `tuner validate` are)")


def _speed(figures: dict[str, Any]) -> tuple[str, str]:
    """tokens/s and seconds/example of a figures dict, marked * when timed with reuse; "-" where
    it has none."""
    if "tokens_per_second" not in figures:
        return "-", "-"
    mark = "*" if figures.get("timed_with_reuse") else ""
    return (f"{figures['tokens_per_second']:.4g}{mark}",
            f"{figures['seconds_per_example']:.4g}{mark}")


CacheOpt = typer.Option(None, "--cache",
                        help="block KV cache: none | prefix | dual (native LLaDA / Dream models)")
GenLengthOpt = typer.Option(None, "--gen-length",
                            help="tokens to generate per example (overrides the spec's "
                                 "\\[decoding] gen_length)")
BlockLengthOpt = typer.Option(None, "--block-length",
                              help="tokens per block (default: the spec's, at most --gen-length)")


@app.command()
def optimize(
    task: str = typer.Option(..., "--task", help="task name (see `tuner tasks`)"),
    model: Optional[str] = typer.Option(None, help="bundled name, folder or hub id"),
    strategy: Optional[str] = typer.Option(
        None, help="strategy to tune (default: less); less+ext: LESS with its extensions; auto: "
                   "every tunable strategy in one study"),
    strategies: Optional[str] = typer.Option(
        None, help="comma-separated strategies of one study over several (implies --strategy "
                   "auto), e.g. less,less+ext,threshold"),
    params: Optional[str] = typer.Option(
        None, help="JSON: strategy params fixed for the study (added to the spec's \\[search]), "
                   "e.g. '{\"indicator\": \"ni.safetensors\"}'; in a study over several, "
                   "'{\"ni\": {...}}' per strategy"),
    trials: Optional[int] = typer.Option(None, help="trials to run now"),
    target: Optional[int] = typer.Option(None,
                                         help="run until the study holds N complete trials, "
                                              "whichever worker ran them (for scale-out)"),
    timeout: Optional[float] = typer.Option(None, help="stop starting trials after S seconds"),
    objective: Optional[str] = typer.Option(None, help=objective_help()),
    storage: Optional[str] = StorageOpt,
    study: Optional[str] = typer.Option(None, help="study name (default from task/model/strategy)"),
    sampler_name: Optional[str] = typer.Option(None, "--sampler", help=" | ".join(SAMPLERS)),
    n_tune: Optional[int] = typer.Option(None, help="tuning examples"),
    n_test: Optional[int] = typer.Option(None, help="held-out examples (validate, export)"),
    accuracy_floor: Optional[float] = typer.Option(None, help="absolute accuracy floor in [0, 1]"),
    tolerance: Optional[float] = typer.Option(None, help="floor = full-step accuracy - PTS points"),
    seed: Optional[int] = typer.Option(None),
    cache: Optional[str] = CacheOpt,
    gen_length: Optional[int] = GenLengthOpt,
    block_length: Optional[int] = BlockLengthOpt,
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1, ..."),
    data: Optional[str] = typer.Option(None, help="local data folder (e.g. GSM8K jsonl files)"),
    spec_path: Optional[Path] = typer.Option(None, "--spec", help="study spec (default studies/TASK.toml)"),
    no_reuse: bool = typer.Option(False, "--no-reuse", help="do not reuse forward passes"),
    no_racing: bool = typer.Option(False, "--no-racing", help="never stop a trial early"),
    reuse_gib: float = typer.Option(
        DEFAULT_BYTES / 2**30, "--reuse-gib",
        help="memory (GiB, on the model's device, per process) that forward-pass reuse may hold: "
             "a row is gen_length x vocab logits (65 MB at LLaDA-8B's 256 x 126,464 in "
             "bfloat16); when full, the deepest states are evicted first"),
    workers: int = typer.Option(1, help="local worker processes (needs PostgreSQL)"),
    init_only: bool = typer.Option(False, "--init-only",
                                   help="create the study, measure the baseline, enqueue the warm "
                                        "starts, and stop (what one init job does before workers)"),
) -> None:
    """Search the strategy's thresholds for TASK; creates the study or resumes it."""
    from .study import StudyRunner

    with errors():
        spec = load_spec(task, spec_path).with_overrides(
            model=model, trials=trials, timeout=timeout, objective=objective,
            sampler=sampler_name, n_tune=n_tune, n_test=n_test, accuracy_floor=accuracy_floor,
            tolerance=tolerance, seed=seed, data=data, cache=cache, gen_length=gen_length,
            block_length=block_length, **_strategy_flags(strategy, strategies))
        spec = _with_fixed_params(spec, params)
        _check_run_flags(spec, trials=trials, target=target, workers=workers)
        cache_bytes = _reuse_bytes(reuse_gib)
        runner = StudyRunner(spec, storage=storage, study_name=study, device=device,
                             cache_bytes=cache_bytes, reuse=not no_reuse, racing=not no_racing)
        _check_held_out_size(runner, n_test)
        if workers > 1:
            from .workers import check_shared_storage

            check_shared_storage(runner.url)
        with spinner(f"loading model {runner.evaluation.model_name} ..."):
            runner.check_model()  # a wrong model fails here, before anything is printed or written
        err.print(f"study [bold]{runner.study_name}[/] in {runner.url_masked}: task {spec.task}, "
                  f"model {spec.model}, strategy {spec.strategy}, objective {spec.objective}",
                  highlight=False)
        with bar("full-step baseline", total=len(runner.evaluation.examples("tune"))) as progress:
            base, study_obj = runner.prepare(progress, budget=target)
        err.print(f"baseline (full-step, {base.n} tuning examples): accuracy {base.accuracy:.1%}, "
                  f"mean NFE {base.mean_nfe:.2f}", highlight=False)
        _say_who_else(runner, study_obj)
        if init_only:
            out.print(f"study {runner.study_name} ready in {runner.url_masked}: "
                      f"{len(study_obj.trials)} trials so far (warm starts included).",
                      highlight=False)
            return
        if workers > 1:
            study_obj = _on_workers(runner, study_obj, workers, target, device=device,
                                    reuse=not no_reuse, racing=not no_racing,
                                    cache_bytes=cache_bytes)
        else:
            study_obj = _here(runner, (base, study_obj), target)
            if runner.evaluation.cache is not None:
                err.print(runner.evaluation.cache.summary(), highlight=False)
        out.print(_front_table(study_obj, f"Pareto front of {runner.study_name} "
                                          f"({len(study_obj.trials)} trials)"))
        arms = _arms_table(study_obj)
        if arms is not None:
            out.print(arms)


def _reuse_bytes(gib: float) -> int:
    """``--reuse-gib`` in bytes; refused unless positive and finite."""
    if not (math.isfinite(gib) and gib > 0):
        raise UsageError(f"--reuse-gib {gib:g}: give the memory forward-pass reuse may hold, in "
                         "GiB (> 0, e.g. 0.5 or 16); --no-reuse turns reuse off.")
    return max(1, int(gib * 2**30))


def _strategy_flags(strategy: str | None, strategies: str | None) -> dict[str, Any]:
    """``--strategy`` / ``--strategies`` as spec overrides: a list of strategies is a study over
    several (``auto``)."""
    from .family import AUTO

    if strategies is None:
        return {"strategy": strategy}
    if strategy not in (None, AUTO):
        raise UsageError(f"--strategies lists the strategies of a study over several; drop "
                         f"--strategy {strategy} (or give --strategy {AUTO}).")
    names = [name.strip() for name in strategies.split(",") if name.strip()]
    if not names:
        raise UsageError("--strategies is empty; list strategies, e.g. less,threshold.")
    return {"strategy": AUTO, "strategies": names}


def _with_fixed_params(spec, params: str | None):
    """The spec with ``--params`` (JSON) merged into its ``[search]`` table as fixed values."""
    import dataclasses

    if params is None:
        return spec
    try:
        fixed = json.loads(params)
    except json.JSONDecodeError as error:
        raise UsageError(f"--params is not valid JSON: {error.msg}.") from None
    if not isinstance(fixed, dict):
        raise UsageError("--params must be a JSON object, e.g. '{\"window\": 2}'.")
    from .spec import resolve_file_params

    fixed = resolve_file_params(fixed, os.getcwd())  # a file path as typed: from here
    search = dict(spec.search)
    for key, value in fixed.items():
        if isinstance(value, dict) and isinstance(search.get(key), dict):
            value = {**search[key], **value}  # [search.<strategy>] of a study over several
        search[key] = value
    return dataclasses.replace(spec, search=search)


def _say_who_else(runner, study_obj) -> None:
    """On a resume: trials of dead workers failed and queued again, and trials still running on
    other workers."""
    from optuna.trial import TrialState

    from .study import count_states

    if runner.recovered:
        err.print(f"{runner.recovered} trial(s) of a stopped worker failed (no heartbeat for the "
                  "grace period) and queued again.", highlight=False)
    running = count_states(study_obj)[TrialState.RUNNING]
    if running:
        err.print(f"{running} trial(s) running on other workers.", highlight=False)


def _check_run_flags(spec, *, trials: int | None, target: int | None, workers: int) -> None:
    if target is not None and target < 1:
        raise UsageError(f"--target must be >= 1 (the complete trials the study should hold), "
                         f"got {target}.")
    if target is not None and target > MAX_COUNT:
        raise UsageError(f"--target must be at most {MAX_COUNT:,}, got {target}.")
    if workers < 1:
        raise UsageError(f"--workers must be >= 1 (1: the trials run in this process), got "
                         f"{workers}.")
    if target is not None and trials is not None:
        raise UsageError("give --trials (how many more) or --target (how many in all), not both.")
    if workers > 1 and spec.trials is None and target is None:
        raise UsageError("--workers needs a number of trials: --trials N (more) or --target N "
                         "(in all).")


def _check_held_out_size(runner, n_test: int | None) -> None:
    """Refuse ``--n-test`` on a study created with another held-out size: validate and export
    measure the size stored with the study, and its stored held-out figures were measured on it.
    Without the flag a resume keeps the study's own. Read before any model is loaded or anything
    is written (no database yet: nothing to check)."""
    import optuna

    if n_test is None:
        return
    try:
        store = open_storage(runner.url, create=False)
        stored = optuna.load_study(study_name=runner.study_name, storage=store).user_attrs
    except (StorageError, KeyError):  # no database, or no such study: it is created with n_test
        return
    created = (stored.get("spec") or {}).get("n_test")
    if created is not None and created != n_test:
        raise StudyMismatchError(
            f"study {runner.study_name!r} was created with n_test = {created} (the held-out "
            f"examples validate and export measure), not {n_test}; drop --n-test, or use another "
            "--study name.")


def _complete(study_obj) -> int:
    from optuna.trial import TrialState

    from .study import count_states

    return count_states(study_obj)[TrialState.COMPLETE]


def _on_workers(runner, study_obj, workers: int, target: int | None, **options: Any):
    """Run the trials on ``workers`` local processes; the study, reloaded."""
    from .workers import WorkerJob, run_workers

    done = _complete(study_obj)
    goal = target if target is not None else done + runner.spec.trials
    job = WorkerJob(spec=runner.spec_dict(), study=runner.study_name, target=goal, **options)
    with bar(f"trials on {workers} workers") as progress:
        run_workers(job, workers, study_obj, url=runner.url,
                    on_progress=lambda n: progress(n - done, max(goal - done, 0)))
    return runner.load()


def _here(runner, prepared, target: int | None):
    """Run the trials in this process, with a progress bar showing the best trial so far."""
    from .study import trial_metrics

    total = runner.spec.trials if target is None else max(target - _complete(prepared[1]), 0)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.fields[best]}"), console=err,
                  transient=True) as progress:
        job = progress.add_task("trials", total=total, best="")
        best: dict[str, float] = {}

        def on_trial(study_obj, trial) -> None:
            m = trial_metrics(trial)
            if m.get("feasible") and m.get("complete") and \
                    m["quality_per_step"] > best.get("quality_per_step", -1):
                best.update(m)
            note = (f"best: acc {best['accuracy']:.1%}, NFE {best['mean_nfe']:.2f}, "
                    f"{best['speedup']:.2f}x" if best else "")
            progress.update(job, advance=1, best=note)

        return runner.optimize(on_trial=on_trial, target=target, prepared=prepared)


@app.command()
def baseline(
    task: str = typer.Option(..., "--task"),
    model: Optional[str] = typer.Option(None),
    storage: Optional[str] = StorageOpt,
    n_tune: Optional[int] = typer.Option(None),
    n_test: Optional[int] = typer.Option(None),
    gen_length: Optional[int] = GenLengthOpt,
    block_length: Optional[int] = BlockLengthOpt,
    device: Optional[str] = typer.Option(None),
    data: Optional[str] = typer.Option(None),
    spec_path: Optional[Path] = typer.Option(None, "--spec"),
) -> None:
    """Full-step decoding (no block cache) on the tuning and held-out splits (measured once,
    then stored)."""
    from .study import StudyRunner

    with errors():
        spec = load_spec(task, spec_path).with_overrides(
            model=model, n_tune=n_tune, n_test=n_test, data=data, gen_length=gen_length,
            block_length=block_length)
        runner = StudyRunner(spec, storage=storage, device=device, tuning=False)
        _load_model(runner)
        table = Table(title=f"full-step baseline: {spec.task} / {spec.model}")
        for column in ("split", "examples", "accuracy", "mean NFE"):
            table.add_column(column, justify="right")
        for split in ("tune", "test"):
            with bar(f"{split} split", total=len(runner.evaluation.examples(split))) as progress:
                b = runner.baseline(split, progress=progress)
            table.add_row(split, str(b.n), f"{b.accuracy:.1%}", f"{b.mean_nfe:.2f}")
        out.print(_fit(table))


@app.command("eval")
def eval_(
    task: str = typer.Option(..., "--task"),
    profile: Optional[Path] = typer.Option(None, help="a profile JSON file"),
    strategy: Optional[str] = typer.Option(None, help="strategy name (with --params)"),
    params: Optional[str] = typer.Option(None, help="strategy params as JSON"),
    model: Optional[str] = typer.Option(None),
    split: str = typer.Option("test", help="tune | test"),
    n: Optional[int] = typer.Option(None, help="examples (default: the spec's split size)"),
    cache: Optional[str] = CacheOpt,
    gen_length: Optional[int] = GenLengthOpt,
    block_length: Optional[int] = BlockLengthOpt,
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    storage: Optional[str] = StorageOpt,
    device: Optional[str] = typer.Option(None),
    data: Optional[str] = typer.Option(None),
    spec_path: Optional[Path] = typer.Option(None, "--spec"),
) -> None:
    """Accuracy, NFE, speed-up and wall time of a profile or of explicit params on a split
    (a plain decode: no forward-pass reuse)."""
    from .study import StudyRunner

    with errors():
        if split not in ("tune", "test"):
            raise UsageError(f"unknown split {split!r}; splits are: tune, test.")
        spec, chosen = _eval_spec(load_spec(task, spec_path), profile, strategy, params,
                                  model=model, data=data, cache=cache, gen_length=gen_length,
                                  block_length=block_length,
                                  **({"n_tune": n} if split == "tune" else {"n_test": n}))
        runner = StudyRunner(spec, storage=storage, device=device, reuse=False, tuning=False)
        _load_model(runner)
        with bar(f"full-step baseline on {split}",
                 total=len(runner.evaluation.examples(split))) as progress:
            base = runner.baseline(split, progress=progress)
        evaluator, reference = runner.evaluation.evaluator(split), None
        if chosen.needs_reference:  # the oracle: the full-step tokens are its reference
            full = runner.baseline_settings
            with bar("full-step reference") as progress:
                reference = evaluator.run(sampler.strategies.Fixed.full_step(full), settings=full,
                                          keep_tokens=True, progress=progress).tokens
        with bar(f"{chosen.name} on {split}") as progress:
            result = evaluator.run(chosen, reference=reference, progress=progress)
        figures = _eval_figures(spec, chosen, result, base, split)
        if as_json:
            print(json.dumps(figures))
            return
        table = Table(title=f"{chosen.name} on {spec.task} ({split}, {result.n} examples)",
                      caption=f"timed: decoding only, device synchronised, batches of "
                              f"{spec.batch_size}, no forward-pass reuse")
        table.add_column("figure")
        table.add_column("value", justify="right")
        for key in ("accuracy", "mean_nfe", "p95_nfe", "speedup", "quality_per_step", "aup",
                    "tokens_per_forward", "tokens_per_second", "seconds_per_example", "wall_s",
                    "baseline_accuracy", "baseline_mean_nfe"):
            value = figures[key]
            table.add_row(key, f"{value:.1%}" if "accuracy" in key else f"{value:.4g}")
        table.add_row("cache", figures["cache"])
        table.add_row("params", json.dumps(figures["params"]))
        out.print(_fit(table))


def _eval_spec(spec, profile: Path | None, strategy: str | None, params: str | None,
               **overrides: Any):
    """(spec, strategy) of `tuner eval`: a profile's strategy and decoding settings, or a
    strategy with JSON params under the spec's settings; flags override either."""
    import dataclasses

    if (profile is None) == (strategy is None):
        raise UsageError("give --profile, or --strategy with --params, but not both.")
    if profile is not None:
        if params is not None:
            raise UsageError("--params goes with --strategy, not with --profile.")
        prof = sampler.load_profile(profile)
        spec = dataclasses.replace(spec, decoding=prof.decoding)
        overrides["model"] = overrides["model"] or (prof.model.name if prof.model else None)
        return spec.with_overrides(strategy=prof.strategy, **overrides), prof.make_strategy()
    try:
        parsed = json.loads(params) if params else {}
    except json.JSONDecodeError as error:
        raise UsageError(f"--params is not valid JSON: {error.msg}.") from None
    return (spec.with_overrides(strategy=strategy, **overrides),
            sampler.make_strategy(strategy, parsed))


def _eval_figures(spec, chosen, result, base, split: str) -> dict[str, Any]:
    from .figures import relative_figures

    return {
        "accuracy": result.accuracy, "mean_nfe": result.mean_nfe, "p95_nfe": result.p95_nfe,
        **relative_figures(result.accuracy, result.mean_nfe, base, spec.gamma,
                           result.tokens_per_forward),
        "tokens_per_forward": result.tokens_per_forward, "wall_s": result.wall_s,
        "seconds_per_example": result.seconds_per_example,
        "tokens_per_second": result.tokens_per_second, "generated_tokens": result.generated_tokens,
        "timed_with_reuse": result.timed_with_reuse, "batch_size": spec.batch_size,
        "n": result.n, "gen_length": spec.decoding.gen_length,
        "block_length": spec.decoding.block_length, "cache": spec.decoding.cache,
        "strategy": chosen.name, "params": chosen.params.to_dict(), "split": split,
    }


@app.command()
def validate(
    study: str = typer.Option(..., "--study"),
    split: str = typer.Option("test"),
    storage: Optional[str] = StorageOpt,
    device: Optional[str] = typer.Option(None),
    each_strategy: bool = typer.Option(False, "--each-strategy",
                                       help="also each strategy's own front (a study over "
                                            "several strategies)"),
) -> None:
    """Re-measure the study's Pareto front on the held-out split and store the figures."""
    from .study import StudyRunner
    from .validate import validate as run_validate

    with errors():
        runner = StudyRunner.from_study(study, storage=storage, device=device)
        _load_model(runner)
        with bar(f"validating the front on {split}") as progress:
            run_validate(runner, split, progress=progress, each_strategy=each_strategy)
        out.print(_front_table(runner.load(), f"Pareto front of {study}, validated on {split}"))
        arms = _arms_table(runner.load()) if each_strategy else None
        if arms is not None:
            out.print(arms)


@app.command()
def export(
    study: str = typer.Option(..., "--study"),
    trial: Optional[int] = typer.Option(None, help="trial number"),
    best: bool = typer.Option(False, "--best", help="the best feasible trial"),
    output: Path = typer.Option(..., "-o", "--output", help="profile file to write"),
    storage: Optional[str] = StorageOpt,
    device: Optional[str] = typer.Option(None),
) -> None:
    """Write a trial as a profile whose metrics are its held-out figures."""
    from .study import StudyRunner
    from .validate import export as run_export

    with errors():
        if (trial is None) == (not best):
            raise UsageError("give --trial N or --best.")
        _check_writable(output)
        runner = StudyRunner.from_study(study, storage=storage, device=device)
        _load_model(runner)
        with bar("held-out figures") as progress:
            profile = run_export(runner, str(output), trial_number=trial, progress=progress)
        m = profile.metrics
        out.print(f"wrote {output}: {profile.strategy} {json.dumps(profile.params)}; held-out "
                  f"accuracy {m['accuracy']:.1%}, mean NFE {m['mean_nfe']:.2f} "
                  f"({m['speedup']:.2f}x fewer than full-step), "
                  f"{m['tokens_per_second']:.4g} tokens/s, {m['seconds_per_example']:.4g} "
                  "s/example (plain decode, no reuse)", highlight=False)


def _check_writable(path: Path) -> None:
    """Refuse an output path that cannot be written, before anything is decoded or stored."""
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give a file name, e.g. {path / 'profile.json'}.")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"folder {folder} does not exist; create it first.")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"cannot write {path}: permission denied.")


@app.command()
def studies(storage: Optional[str] = StorageOpt) -> None:
    """List the studies in the storage."""
    import optuna

    from .study import BASELINES_STUDY

    with errors():
        store = open_storage(storage, create=False)
        table = Table(title=f"studies in {mask_url(resolve_url(storage))}")
        for column in ("study", "task", "model", "strategy", "objective", "trials"):
            table.add_column(column)
        for summary in optuna.get_all_study_summaries(store):
            if summary.study_name == BASELINES_STUDY:
                continue
            ident = summary.user_attrs.get("identity", {})
            table.add_row(summary.study_name, ident.get("task", "?"), ident.get("model", "?"),
                          ident.get("strategy", "?") + (f" ({', '.join(ident['strategies'])})"
                                                        if ident.get("strategies") else ""),
                          ident.get("objective", "?"), str(summary.n_trials))
        out.print(_fit(table))


@app.command()
def show(name: str = typer.Argument(..., help="study name"),
         storage: Optional[str] = StorageOpt,
         as_json: bool = typer.Option(False, "--json",
                                      help="print one JSON object: every trial's params and "
                                           "metrics, and the held-out figures")) -> None:
    """Show a study's trials and its Pareto front."""
    import optuna

    from .study import format_values, searched_values, trial_metrics
    from .validate import held_out

    with errors():
        store = open_storage(storage, create=False)
        try:
            study = optuna.load_study(study_name=name, storage=store)
        except KeyError:
            raise UsageError(f"no study named {name!r}; `tuner studies` lists them.") from None
        if as_json:
            arm_of, _ = _arm_of(study)
            trials = [{"number": t.number, "state": t.state.name,
                       "strategy": t.user_attrs.get("strategy"),
                       "arm": arm_of(t) if "params" in t.user_attrs else None,
                       "params": t.user_attrs.get("params", {}), "metrics": trial_metrics(t),
                       "held_out": held_out(study, t.number)} for t in study.trials]
            print(json.dumps({"study": name, "trials": trials}))
            return
        arm_of, several = _arm_of(study)
        table = Table(title=f"trials of {name}", caption=TRIAL_TIMING)
        for column in ("trial", "state", *(["strategy"] if several else []), "accuracy",
                       "mean NFE", "quality/step", "feasible", "tok/s", "s/example", "params"):
            table.add_column(column)
        for t in study.trials:
            m = trial_metrics(t)
            params = format_values(searched_values(t))
            table.add_row(str(t.number), t.state.name,
                          *([arm_of(t) if "params" in t.user_attrs else "-"] if several else []),
                          f"{m['accuracy']:.1%}" if m else "-",
                          f"{m['mean_nfe']:.2f}" if m else "-",
                          f"{m['quality_per_step']:.3f}" if m else "-",
                          ("yes" if m.get("feasible") and m.get("complete") else "no") if m else "-",
                          *_speed(m), params)
        out.print(_fit(table))
        out.print(_front_table(study, f"Pareto front of {name}"))
        arms = _arms_table(study)
        if arms is not None:
            out.print(arms)


@app.command("finetune-edit")
def finetune_edit(
    task: str = typer.Option(..., "--task", help="task whose training data is used (arith, cot)"),
    output: Path = typer.Option(..., "-o", "--output", help="new folder to write"),
    model: Optional[str] = typer.Option(None, help="base model (default: the task's)"),
    steps: int = typer.Option(200, help="optimiser steps"),
    batch_size: int = typer.Option(16, "--batch-size"),
    lr: float = typer.Option(1e-3),
    rank: int = typer.Option(8, help="LoRA rank"),
    alpha: float = typer.Option(16.0, help="LoRA alpha"),
    seed: int = typer.Option(0),
    device: Optional[str] = typer.Option(None, help="cpu, cuda, ..."),
    threads: Optional[int] = typer.Option(None, help="CPU threads"),
) -> None:
    """LoRA fine-tune on TASK's training data that keeps EDIT's reasoning map: writes the adapter,
    the merged model and the map (with the base model's fingerprint and the data hash)."""
    from .edit_training import EditTrainConfig, check_edit_inputs
    from .edit_training import finetune_edit as run_finetune

    with errors():
        cfg = EditTrainConfig(task=task, out=str(output), model=model, steps=steps,
                              batch_size=batch_size, lr=lr, rank=rank, alpha=alpha, seed=seed,
                              device=device, threads=threads)
        check_edit_inputs(cfg)  # before the model loads
        with bar("LoRA fine-tune", total=steps) as progress:
            summary = run_finetune(cfg, progress=lambda done, total, loss: progress(done, total))
        out.print(f"wrote {output}: adapter/, model/, {summary['map_file']} (sha256 "
                  f"{summary['map_sha256'][:12]}..., {summary['map_values']} values, "
                  f"{summary['map_values'] / summary['model_values']:.3%} of the model); loss "
                  f"{summary['first_loss']:.4f} -> {summary['final_loss']:.4f} in "
                  f"{summary['wall_seconds']:.0f} s. Decode with --model {output / 'model'} "
                  f"--strategy edit --params '{json.dumps(summary['edit_params'])}'",
                  highlight=False, soft_wrap=True)


@app.command("train-indicator")
def train_indicator(
    task: str = typer.Option(..., "--task", help="task whose training split is used (arith, cot)"),
    output: Path = typer.Option(..., "-o", "--output", help="indicator file to write"),
    model: Optional[str] = typer.Option(None, help="bundled name, folder or hub id"),
    n: int = typer.Option(200, "--n", help="training examples (prompts)"),
    epochs: int = typer.Option(6, help="passes over the collected rows, per round"),
    rounds: int = typer.Option(2, help="1: trajectory-preserving states only; 2: then the "
                                       "indicator's own states too"),
    neg_weight: float = typer.Option(2.0, "--neg-weight", help="weight of a negative row"),
    seed: int = typer.Option(0),
    spec_path: Optional[Path] = typer.Option(None, "--spec", help="study spec (default studies/TASK.toml)"),
    gen_length: Optional[int] = GenLengthOpt,
    block_length: Optional[int] = BlockLengthOpt,
    device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1, ..."),
) -> None:
    """Train NI Sampling's indicator for MODEL on TASK's training split and write its file (decode
    with --strategy ni and the printed params)."""
    from sampler.artifacts import file_sha256

    from .evaluation import Evaluation
    from .indicator_training import TrainingOptions, training_examples, write_indicator
    from .indicator_training import train_indicator as run_training

    with errors():
        _check_writable(output)
        options = TrainingOptions(n_examples=n, epochs=epochs, rounds=rounds,
                                  neg_weight=neg_weight, seed=seed)
        spec = load_spec(task, spec_path).with_overrides(model=model, gen_length=gen_length,
                                                         block_length=block_length)
        evaluation = Evaluation(spec, device=device, reuse=False)
        training_examples(evaluation.task, 1)  # a task without a training split fails here
        with spinner(f"loading model {evaluation.model_name} ..."):
            evaluation.model  # noqa: B018 (a cached property: this loads it)
        phases = {"reference": "full-step reference", "trajectories": "collecting trajectories",
                  "training": "training"}
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True) as bars:
            ids: dict[str, Any] = {}

            def progress(phase: str, done: int, total: int) -> None:
                if phase not in ids or bars.tasks[ids[phase]].finished and done < total:
                    ids[phase] = bars.add_task(phases[phase], total=total)
                bars.update(ids[phase], completed=done, total=total)

            result = run_training(evaluation, options, progress=progress)
        path = write_indicator(result, output)
        figures = result.provenance["figures"]
        last = figures.get("round 2") or figures["round 1"]
        params = {"indicator": str(path), "indicator_sha256": file_sha256(path)}
        held = (f", held-out rows {last['val_accuracy']:.1%} right" if "val_accuracy" in last
                else "")
        out.print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB): {int(last['rows'])} rows "
                  f"from {result.provenance['n_examples']} training examples, loss "
                  f"{last['initial_train_loss']:.4f} -> {last['final_train_loss']:.4f}{held}, in "
                  f"{result.provenance['train_seconds']:.0f} s. Decode with --strategy ni "
                  f"--params '{json.dumps(params)}'", highlight=False, soft_wrap=True)


@app.command()
def tasks() -> None:
    """List the registered tasks."""
    from .tasks import TASKS

    table = Table(title="tasks")
    table.add_column("task")
    table.add_column("default model")
    table.add_column("description")
    for name, task in sorted(TASKS.items()):
        table.add_row(name, task.default_model, task.description)
    out.print(_fit(table))


@app.command()
def dashboard(storage: Optional[str] = StorageOpt,
              port: int = typer.Option(8501, "--port", help="port to serve on"),
              address: str = typer.Option("127.0.0.1", "--address",
                                          help="address to serve on (0.0.0.0: every interface, "
                                               "e.g. in a container)")) -> None:
    """Browse studies and Pareto fronts, look inside trials, export profiles (a Streamlit app)."""
    from importlib.metadata import entry_points

    with errors():
        # The dashboard imports the tuner, never the reverse: its launcher is an entry point.
        found = entry_points(group="less_tuner.dashboard", name="launch")
        if not found:
            raise TunerError("the dashboard is not installed: pip install 'less-tuner[dashboard]' "
                             "(from a checkout: pip install -e '.[dashboard]').")
        code = next(iter(found)).load()(storage, port=port, address=address)
    raise typer.Exit(code)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("Interrupted.")
        sys.exit(130)


if __name__ == "__main__":
    main()
