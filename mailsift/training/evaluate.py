"""`mailsift eval`: the benchmark protocol of the shared corpus, runnable on anyone's mail.

Start from an empty private store, learn the training spam and ham, score every test message
with rules + Bayes, and report FP%, FN%, 1-AUC%, FN% at zero FP and both speeds. The store is a
temporary SQLite file unless another is named, so an evaluation never touches production counts.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mailsift.classifier.filter import BayesFilter
from mailsift.classifier.open_store import open_store
from mailsift.classifier.store import Label
from mailsift.config import Config
from mailsift.scanner import Scanner
from mailsift.training.learn import learn
from mailsift.training.metrics import summarize
from mailsift.training.parallel import Failure, SurvivingPool
from mailsift.training.sources import directory_files, iter_messages, looks_like_mail


class EvalError(Exception):
    """The evaluation cannot give figures; the message says which message and why."""


@dataclass(frozen=True)
class EvalReport:
    fp_pct: float
    fn_pct: float
    one_minus_auc_pct: float
    fn_at_zero_fp_pct: float
    learn_msgs_per_s: float
    score_msgs_per_s: float
    ham: int
    spam: int
    bayes_silent: str = ""  # why Bayes gave no verdict, when it learned too little to give one
    not_mail: tuple[str, ...] = ()  # files of the test folders left out: they are not mail

    def as_dict(self) -> dict[str, float | str | tuple[str, ...]]:
        return asdict(self)

    def text(self) -> str:
        return "\n".join([
            f"test messages:    {self.ham} ham, {self.spam} spam",
            f"FP:               {self.fp_pct:.2f}%",
            f"FN:               {self.fn_pct:.2f}%",
            f"1-AUC:            {self.one_minus_auc_pct:.3f}%",
            f"FN at zero FP:    {self.fn_at_zero_fp_pct:.2f}%",
            f"learning:         {self.learn_msgs_per_s:.0f} msg/s",
            f"scoring:          {self.score_msgs_per_s:.0f} msg/s",
            *([f"warning:          {self.bayes_silent}"] if self.bayes_silent else []),
            *([f"not scored:       {len(self.not_mail)} file(s) that are not mail, e.g. "
               f"{self.not_mail[0]}"] if self.not_mail else []),
        ])


def private_config(config: Config, store: str | None, workdir: str) -> Config:
    """The same rules and Bayes settings, but a store of the evaluation's own and no autolearn."""
    url = store or f"sqlite:///{Path(workdir, 'bayes.sqlite')}"
    return config.model_copy(update={
        "bayes": config.bayes.model_copy(update={"store": url, "enabled": True}),
        "autolearn": config.autolearn.model_copy(update={"enabled": False}),
    })


_scanner: Scanner | None = None


def _start_scorer(config: Config, network: bool) -> None:
    global _scanner
    _scanner = Scanner(config, network=network, bayes=BayesFilter(config.bayes, open_store(config.bayes)))


def _probe_rules(config: Config, network: bool) -> None:
    """Build the rules once here, so that the scoring workers (daemonic: they may not start the
    processes that probe a new pattern with a time limit) find every pattern's mode cached."""
    scanner = Scanner(config, network=network)
    scanner.engine.plan(scanner.score_set(bayes=True))


def _score(path: str) -> float:
    assert _scanner is not None
    return _scanner.scan(Path(path).read_bytes()).score


def _scores(pool: SurvivingPool[str, float], paths: list[str]) -> list[float]:
    """Every message's score: an evaluation missing one would be wrong, so a message that cannot
    be scored stops it, by name."""
    scores = []
    for path, score in pool.map(paths):
        if isinstance(score, Failure):
            raise EvalError(f"scoring {path} failed: {score.why}")
        scores.append(score)
    return scores


def _files(directory: str, not_mail: list[str]) -> list[str]:
    """The test messages of a folder, by name (the scoring workers read each file themselves).
    Files that are not mail (a README, an index, an empty file) are left out and named in
    `not_mail`, as learning leaves them out: scored, they counted as test messages."""
    found = []
    for path in directory_files(Path(directory)):
        (found if _starts_like_mail(path) else not_mail).append(str(path))
    if not found:
        raise EvalError(f"{directory}: no mail message in it")
    return found


def _starts_like_mail(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return looks_like_mail(file.read(4096))
    except OSError:
        return True  # scored, it stops the run by name, as any message that cannot be scored


def _silence(bayes: BayesFilter) -> str:
    """Why Bayes will say nothing in this evaluation, or "": with fewer messages learned than
    bayes.min_spam/min_ham, the figures are the rules' alone, and should say so."""
    totals, config = bayes.store.totals(), bayes.config
    if config.speaks(totals.spam, totals.ham):
        return ""
    return (f"Bayes stayed silent: it learned {totals.spam} spam and {totals.ham} ham, and speaks "
            f"from bayes.min_spam = {config.min_spam} and min_ham = {config.min_ham}; these are "
            "the figures of the rules alone")


def _require_empty(bayes: BayesFilter, store: str | None) -> None:
    """The protocol starts from an empty store. A store named with --store that holds anything is
    refused rather than cleared: pointed at the production Redis, eval would wipe the site's model.
    The totals answer at once; only a store without any is scanned for tokens."""
    totals = bayes.store.totals()
    tokens = 0 if totals.spam or totals.ham else bayes.store.dump_info().tokens
    if totals.spam or totals.ham or tokens:
        raise EvalError(f"--store {store} (key prefix {bayes.config.key_prefix!r}) already holds "
                        f"{totals.spam} spam, {totals.ham} ham"
                        + (f" and {tokens} token(s)" if tokens else "")
                        + "; eval learns into an empty store: name another one, or another "
                        "bayes.key_prefix")


def evaluate(config: Config, train_spam: str, train_ham: str, test_spam: str, test_ham: str,
             store: str | None = None, network: bool = False, plot: str | None = None) -> EvalReport:
    with tempfile.TemporaryDirectory(prefix="mailsift-eval-") as workdir:
        config = private_config(config, store, workdir)
        bayes = BayesFilter(config.bayes, open_store(config.bayes))
        _require_empty(bayes, store)
        started = time.perf_counter()
        learned = 0
        for directory, label in ((train_spam, Label.SPAM), (train_ham, Label.HAM)):
            items = list(iter_messages([directory]))
            learned += learn(items, label, config, bayes, expected=len(items)).examined
        learn_seconds = time.perf_counter() - started
        silent = _silence(bayes)
        not_mail: list[str] = []
        spam, ham = _files(test_spam, not_mail), _files(test_ham, not_mail)
        labels = [True] * len(spam) + [False] * len(ham)
        _probe_rules(config, network)
        with SurvivingPool(_score, _start_scorer, (config, network)) as pool:
            _scores(pool, (spam + ham)[:2])  # start-up (rules, store) is not scoring time
            started = time.perf_counter()
            scores = _scores(pool, spam + ham)
            score_seconds = time.perf_counter() - started
    required = config.scoring.required_score
    metrics = summarize(labels, scores, [s >= required for s in scores], score_seconds)
    if plot:
        from mailsift.training.plot import draw

        draw(labels, scores, required, plot)
    return EvalReport(metrics.fp_pct, metrics.fn_pct, metrics.one_minus_auc_pct,
                      metrics.fn_at_zero_fp_pct, learned / learn_seconds, metrics.msgs_per_s,
                      len(ham), len(spam), silent, tuple(not_mail))
