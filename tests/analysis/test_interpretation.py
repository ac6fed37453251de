"""Interpretation (fastai's ClassificationInterpretation): hand-made scores with known answers, then a real version's
out-of-fold scores checked against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, log_loss, precision_score, recall_score

from conftest import TUTORIAL
from workbench import Interpretation, label_from_name, parse_labels
from workbench.analysis.interpretation import NONE_NAME
from workbench.analysis.training import NEGATIVE_LABEL, predicted_labels

# Two classes, six images; at 0.5 the predictions are a, b, b, (none), a, (none).
CLASSES = ["a", "b"]
SCORES = np.array(
    [
        [0.9, 0.1],  # a, called a
        [0.3, 0.6],  # a, called b
        [0.2, 0.8],  # b, called b
        [0.4, 0.45],  # b, called nothing at 0.5 (b at 0.45 or below)
        [0.8, 0.1],  # a negative example, called a
        [0.1, 0.2],  # a negative example, called nothing
    ]
)
LABELS = ["a", "a", "b", "b", NEGATIVE_LABEL, NEGATIVE_LABEL]
NAMES = [f"{i}.jpg" for i in range(1, 7)]


@pytest.fixture
def made() -> Interpretation:
    return Interpretation(CLASSES, SCORES, LABELS, NAMES)


def test_confusion_matrix_by_construction(made):
    matrix = made.confusion_matrix(0.5)
    assert list(matrix.index) == list(matrix.columns) == ["a", "b", NONE_NAME]
    assert matrix.index.name == "actual" and matrix.columns.name == "predicted"
    assert matrix.to_numpy().tolist() == [[1, 1, 0], [0, 1, 1], [1, 0, 1]]
    assert made.confusion_matrix(0.45).loc["b"].tolist() == [0, 2, 0]  # 0.45 reaches a threshold of 0.45
    assert made.confusion_matrix(0.0).to_numpy().tolist() == [[1, 1, 0], [0, 2, 0], [1, 1, 0]]
    assert made.confusion_matrix(0.95).to_numpy().tolist() == [[0, 0, 2], [0, 0, 2], [0, 0, 2]]
    assert made.accuracy(0.5) == pytest.approx(3 / 6)


def test_most_confused_by_construction(made):
    assert made.most_confused(threshold=0.5) == [("a", "b", 1), ("b", NONE_NAME, 1), (NONE_NAME, "a", 1)]
    assert made.most_confused(min_count=2, threshold=0.5) == []
    assert made.most_confused(min_count=2, threshold=0.95) == [("a", NONE_NAME, 2), ("b", NONE_NAME, 2)]


def test_metrics_by_construction(made):
    table = made.metrics(0.5)
    assert list(table.index) == CLASSES
    # a: positives 0.9, 0.3 -> 1 of 2 called; the rest 0.2, 0.4, 0.8, 0.1 -> 1 of 4 called
    assert table.loc["a", ["precision", "recall", "false_positive_rate", "positives"]].tolist() == [0.5, 0.5, 0.25, 2]
    # b: positives 0.8, 0.45 -> 1 of 2; the rest 0.1, 0.6, 0.1, 0.2 -> 1 of 4
    assert table.loc["b", ["precision", "recall", "false_positive_rate", "positives"]].tolist() == [0.5, 0.5, 0.25, 2]
    above = made.metrics(0.99)
    assert (
        above["precision"].isna().all() and (above["recall"] == 0).all() and (above["false_positive_rate"] == 0).all()
    )
    everything = made.metrics(0.0)
    assert (everything["recall"] == 1).all() and (everything["false_positive_rate"] == 1).all()
    # AP of a: ranked 0.9 (a), 0.8 (neg), 0.4, 0.3 (a), ... -> (1/1 + 2/4) / 2
    assert table.loc["a", "average_precision"] == pytest.approx((1 + 2 / 4) / 2)


def test_top_losses_by_construction(made):
    # mean binary cross-entropy over the classes, e.g. image 2 (a): -(ln 0.3 + ln 0.4) / 2
    expected = [
        -(math.log(s[0] if label == "a" else 1 - s[0]) + math.log(s[1] if label == "b" else 1 - s[1])) / 2
        for s, label in zip(SCORES, LABELS, strict=True)
    ]
    losses = made.top_losses()
    assert list(losses["name"]) == ["2.jpg", "5.jpg", "4.jpg", "3.jpg", "6.jpg", "1.jpg"]
    assert losses["loss"].tolist() == pytest.approx(sorted(expected, reverse=True))
    top = made.top_losses(2, threshold=0.5)
    assert top[["name", "actual", "predicted"]].values.tolist() == [["2.jpg", "a", "b"], ["5.jpg", NONE_NAME, "a"]]
    assert top["actual_score"].iloc[0] == pytest.approx(0.3) and math.isnan(top["actual_score"].iloc[1])
    assert top["top_class"].tolist() == ["b", "a"] and top["top_score"].tolist() == pytest.approx([0.6, 0.8])


def test_labels_outside_the_classes_are_none_and_a_class_named_none_keeps_its_name():
    found = Interpretation(["(none)", "b"], [[0.9, 0.1], [0.1, 0.2]], ["(none)", "cheetah"])
    assert found.none == "(none)*" and found.actual == ["(none)", "(none)*"]
    assert found.confusion_matrix(0.5).to_numpy().tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 1]]
    with pytest.raises(ValueError, match="scores must be"):
        Interpretation(["a"], np.zeros((2, 2)), ["a", "a"])


def test_float32_scores_count_exactly_as_numpy_compares_them():
    rng = np.random.default_rng(0)
    scores = rng.random((300, 3), dtype=np.float32).round(2)  # many ties, and values like 0.69 as float32
    labels = [["x", "y", "z", ""][i] for i in rng.integers(0, 4, 300)]
    found = Interpretation(["x", "y", "z"], scores, labels)
    for t in [0.0, 0.1, 0.3, 0.5, 0.69, 0.7, float(scores[5, 1]), float(np.float32(0.57)), 1.0]:
        table = found.metrics(t)
        for i, name in enumerate(["x", "y", "z"]):
            truth, guess = np.asarray(labels) == name, scores[:, i] >= t
            assert table.loc[name, "recall"] == pytest.approx((truth & guess).sum() / truth.sum())
            assert table.loc[name, "false_positive_rate"] == pytest.approx((~truth & guess).sum() / (~truth).sum())
        predicted = [p or NONE_NAME for p in predicted_labels(scores, ["x", "y", "z"], t)]
        actual = [label or NONE_NAME for label in labels]
        names = ["x", "y", "z", NONE_NAME]
        assert (found.confusion_counts(t) == confusion_matrix(actual, predicted, labels=names)).all()


# ---------------------------------------------------------------- a real version's out-of-fold scores
@pytest.fixture(scope="module")
def real(dogs):
    wb, cid = dogs
    return wb.out_of_fold(cid), wb.interpretation(cid), wb.versions(cid)[-1]["metrics"]


def test_real_confusion_matrix_is_sklearns_at_every_threshold(real):
    oof, found, _ = real
    names = [*oof.classes, NONE_NAME]
    actual = [label or NONE_NAME for label in oof.labels]
    for t in (0.05, 0.3, 0.5, 0.8, 0.95, 0.999):
        predicted = [p or NONE_NAME for p in predicted_labels(oof.scores, oof.classes, t)]
        expected = confusion_matrix(actual, predicted, labels=names)
        assert (found.confusion_matrix(t).to_numpy() == expected).all()
        off_diagonal = {
            (names[r], names[c]): int(expected[r, c])
            for r in range(len(names))
            for c in range(len(names))
            if r != c and expected[r, c]
        }
        confused = found.most_confused(threshold=t)
        assert {(a, p): n for a, p, n in confused} == off_diagonal
        assert [n for _, _, n in confused] == sorted(off_diagonal.values(), reverse=True)


def test_real_metrics_are_sklearns_and_match_the_stored_training_metrics(real):
    oof, found, stored = real
    assert found.accuracy(0.5) == pytest.approx(stored["accuracy"])
    for t in (0.2, 0.5, 0.9):
        table = found.metrics(t)
        for i, name in enumerate(oof.classes):
            truth, guess = np.asarray(oof.labels) == name, oof.scores[:, i] >= t
            assert table.loc[name, "precision"] == pytest.approx(
                precision_score(truth, guess, zero_division=np.nan), nan_ok=True
            )
            assert table.loc[name, "recall"] == pytest.approx(recall_score(truth, guess))
            if t == 0.5:
                assert table.loc[name, "precision"] == pytest.approx(stored["per_class"][name]["precision"])
                assert table.loc[name, "recall"] == pytest.approx(stored["per_class"][name]["recall"])


def test_real_top_losses_are_sklearns_log_loss_ranked(real):
    oof, found, _ = real
    losses = found.top_losses()
    assert len(losses) == len(oof.labels) and losses["loss"].is_monotonic_decreasing
    for row in losses.head(10).itertuples():
        i = oof.sources.index(row.name)
        truth = [1 if oof.labels[i] == name else 0 for name in oof.classes]
        assert row.loss == pytest.approx(log_loss(truth, oof.scores[i].astype(np.float64), labels=[0, 1]), rel=1e-6)
        assert row.sha256 == oof.sha256[i] and row.actual == (oof.labels[i] or NONE_NAME)
    assert len(found.top_losses(3)) == 3


def test_workbench_interpretation_of_an_older_version(dogs):
    wb, cid = dogs
    first = wb.interpretation(cid, version=1)
    assert first.version == 1 and first.classes == ["beagle", "husky", "goldenretriever"]
    assert first.confusion_matrix().to_numpy().sum() == len(wb.out_of_fold(cid, version=1).labels)


# ---------------------------------------------------------------- ground truth of classified images
def test_label_from_name_reads_folders_zips_and_labels_files():
    classes = ["beagle", "husky"]
    assert label_from_name("set/beagle/x.jpg", classes) == "beagle"
    assert label_from_name("husky_positive_examples.zip/husky/x.jpg", classes) == "husky"
    assert label_from_name("husky_positive_examples.zip/x.jpg", classes) == "husky"
    assert label_from_name("beagle/photos/x.jpg", classes) == "beagle"
    assert label_from_name("set/negatives/x.jpg", classes) == NONE_NAME
    assert label_from_name("husky/negatives/x.jpg", classes) == NONE_NAME  # the innermost word decides
    assert label_from_name("cats.zip/cats/x.jpg", classes) == NONE_NAME
    assert label_from_name("x.jpg", classes) == NONE_NAME
    labels = parse_labels((TUTORIAL / "test" / "LABELS.txt").read_text())
    assert labels["0.jpg"] == "husky" and labels["1.jpg"] == "cheetah" and len(labels) == 7
    assert label_from_name("test/0.jpg", classes, labels) == "husky"
    assert label_from_name("1.jpg", classes, labels) == NONE_NAME
