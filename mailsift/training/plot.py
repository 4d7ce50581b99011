"""`mailsift eval --plot`: the ROC curve and the score histogram, for a human to look at."""

from __future__ import annotations

from collections.abc import Sequence


def draw(labels: Sequence[bool], scores: Sequence[float], threshold: float, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on a mail server
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    false_pos, true_pos, _ = roc_curve(list(labels), list(scores))
    figure, (roc, histogram) = plt.subplots(1, 2, figsize=(11, 4.5))
    roc.plot(false_pos, true_pos)
    roc.set(xscale="log", xlim=(1e-4, 1), xlabel="false positive rate (log)",
            ylabel="true positive rate", title="ROC")
    ham = [s for s, label in zip(scores, labels, strict=True) if not label]
    spam = [s for s, label in zip(scores, labels, strict=True) if label]
    histogram.hist([ham, spam], bins=40, label=["ham", "spam"], alpha=0.7)
    histogram.axvline(threshold, color="black", linestyle="--", label=f"required {threshold:g}")
    histogram.set(yscale="log", xlabel="score", ylabel="messages", title="Scores")
    histogram.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
