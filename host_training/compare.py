"""Two models on the same faces, face by face: `python -m host_training.compare
SHIPPED.tflite CANDIDATE.tflite DATA`.

A model is shipped by the rule in docs/training.md, which asks for a paired
comparison, not two numbers: both models answer every PublicTest face
(int8, flip averaging, as the default config runs them), and what counts is
how often the candidate is right where the shipped model is wrong and the
reverse. Reported for the FER+ crowd majority (the primary figure) and the
FER-2013 labels: each model's accuracy, the difference with a 95 % paired
bootstrap interval (faces resampled, both models' answers kept together),
and the exact McNemar test's two-sided p on the faces where they disagree.
Needs only the TFLite runtime.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from host_training.data import LABELS
from host_training.paired import paired_difference


def compare(shipped: Path, candidate: Path, data: Path, cache_dir: str | None = ".cache/fer"):
    """Both models on `data`'s PublicTest (int8 as given, flip averaging):
    the paired figures for the FER+ majority and the FER-2013 labels."""
    from host_training.evaluate import crowd_votes, predict_split

    answers = {}
    for name, model in (("shipped", shipped), ("candidate", candidate)):
        splits, probs, _ = predict_split(model, data, "val", cache_dir=cache_dir, flip_average=True)
        answers[name] = probs.argmax(axis=1)
    faces = splits["val"]
    result = {
        "shipped_model": str(shipped),
        "candidate_model": str(candidate),
        "fer2013_labels": paired_difference(
            answers["shipped"] == faces.y, answers["candidate"] == faces.y
        ),
        "recall_fer2013": {
            name: {
                label: round(float((given[faces.y == i] == i).mean()), 4)
                for i, label in enumerate(LABELS)
                if (faces.y == i).any()
            }
            for name, given in answers.items()
        },
    }
    if (votes := crowd_votes(faces, "auto")) is not None:
        majority = votes.majority()
        counted = majority >= 0
        result["ferplus_majority"] = paired_difference(
            answers["shipped"][counted] == majority[counted],
            answers["candidate"][counted] == majority[counted],
        )
    return result


def verdict(result: dict) -> list[tuple[str, bool, str]]:
    """docs/training.md's ship rule on `compare`'s (and the pipeline check's)
    figures: (rule, passed, the figures it rests on), one per rule."""
    rules = []
    if "ferplus_majority" in result:
        crowd = result["ferplus_majority"]
        low = crowd["interval_95"][0]
        rules.append(("FER+ majority: the paired interval above 0", low > 0, _said(crowd)))
    labels = result["fer2013_labels"]
    rules.append(("FER-2013 labels: at least 66.5 %", labels["candidate"] >= 0.665, _said(labels)))
    rules.append(
        ("FER-2013 labels: not worse beyond noise", labels["interval_95"][1] >= 0, _said(labels))
    )
    recall = result["recall_fer2013"]["candidate"]
    worst = min(recall, key=recall.get)
    rules.append(
        (
            "every class's recall at least 0.30",
            recall[worst] >= 0.30,
            f"lowest {worst} {recall[worst]:.2f}",
        )
    )
    if "pipeline" in result:
        pipe = result["pipeline"]["difference"]
        rules.append(
            ("the whole pipeline: not worse beyond noise", pipe["interval_95"][1] >= 0, _said(pipe))
        )
    return rules


def _said(r: dict) -> str:
    return (
        f"{r['shipped']:.2%} -> {r['candidate']:.2%} on {r['faces']} faces, "
        f"{r['difference']:+.2%} (95 % {r['interval_95'][0]:+.2%} to {r['interval_95'][1]:+.2%})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shipped", type=Path, help="the shipped model (models/emotion_int8.tflite)")
    parser.add_argument("candidate", type=Path, help="the model that would replace it")
    parser.add_argument("data", type=Path, help="FER-2013 (data/fer2013)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--pipeline-faces",
        type=int,
        default=0,
        help="also the whole-pipeline check on a clip of this many distinct PublicTest "
        "faces (host_training/pipeline_check.py; the rule asks for 300 or more)",
    )
    args = parser.parse_args(argv)
    for path in (args.shipped, args.candidate, args.data):
        if not path.exists():
            print(f"compare: {path} not found", file=sys.stderr)
            return 2
    from benchmarks.provenance import provenance, record_start

    record_start()
    result = compare(args.shipped, args.candidate, args.data)
    result["provenance"] = {
        "shipped": provenance(model=args.shipped),
        "candidate": provenance(model=args.candidate),
    }
    if args.pipeline_faces:
        from host_training.pipeline_check import check

        result["pipeline"] = check(args.shipped, args.candidate, args.data, args.pipeline_faces)
    result["verdict"] = [
        {"rule": rule, "passed": ok, "figures": said} for rule, ok, said in verdict(result)
    ]
    for rule in result["verdict"]:
        print(f"{'pass' if rule['passed'] else 'FAIL'}: {rule['rule']}: {rule['figures']}")
    for name in ("ferplus_majority", "fer2013_labels"):
        if name in result:
            r = result[name]
            print(
                f"{name}: {r['shipped']:.2%} -> {r['candidate']:.2%} on {r['faces']} faces, "
                f"{r['difference']:+.2%} (95 % {r['interval_95'][0]:+.2%} to "
                f"{r['interval_95'][1]:+.2%}); {r['gained']} gained, {r['lost']} lost, "
                f"McNemar p {r['mcnemar_p']}"
            )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
