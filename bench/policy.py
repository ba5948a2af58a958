"""Policies trained on a family of generated shops, measured on held-out shops of the family.

    .venv/bin/python bench/policy.py                                  # the small family, 5 training seeds
    .venv/bin/python bench/policy.py --jobs 10,20 --machines 5,10 --instances 32 --episodes 640
    .venv/bin/python bench/policy.py --breakdowns --instances 32 --episodes 800

Each training seed learns one policy (scheduling.engine.family.train, a fixed number of episodes,
so a run repeats exactly) on its own training shops (even generation seeds), and every policy is
measured on the same held-out shops (odd generation seeds, never trained on). Printed per seed:
the mean held-out gap of the trained policy to the best fixed rule of each shop (the best of the
six makespan rules, chosen afterwards), of the untrained policy (MWKR everywhere), the share of
shops where the policy is at least as short as the best rule, and the gap on the training shops
of the policy kept. Then the mean ± standard deviation over the seeds, and for scale each fixed
rule's mean gap on the held-out shops (the best single rule for the family is a fair bar too).
With `--breakdowns`, shop k is measured under the breakdowns of draw k, the same for every method.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pair(text: str) -> tuple[int, int]:
    low, high = (int(x) for x in text.split(","))
    return low, high


def spread(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.fmean(values):+.2f} ± {100 * sd:.2f}"


def main() -> int:
    from scheduling.engine import family

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=pair, default=(5, 10), help="lowest,highest number of jobs")
    parser.add_argument("--machines", type=pair, default=(3, 5), help="lowest,highest number of machines")
    parser.add_argument("--breakdowns", action="store_true", help="machines break down (family.with_breakdowns)")
    parser.add_argument("--instances", type=int, default=64, help="training shops per seed")
    parser.add_argument("--held-out", type=int, default=30, help="held-out shops (the same for every seed)")
    parser.add_argument("--episodes", type=int, default=1600, help="training episodes per seed")
    parser.add_argument("--seeds", type=int, default=5, help="training seeds 0, 1, …")
    args = parser.parse_args()
    chosen = family.Family(
        jobs=args.jobs, machines=args.machines, instances=args.instances, breakdowns=args.breakdowns, held_out=args.held_out
    ).check()
    print(f"family {chosen.as_dict()}, {args.episodes} episodes per seed", flush=True)
    print(f"{'seed':>4}{'episodes':>9}{'seconds':>9}{'kept at':>9}{'train gap':>11}{'held-out':>10}{'untrained':>11}{'wins':>7}")
    started = time.monotonic()
    trained, untrained = [], []
    for seed in range(args.seeds):
        training = family.train(chosen, seconds=family.MAX_SECONDS, episodes=args.episodes, seed=seed)
        metrics = family.evaluate(training.policy, chosen)["metrics"]
        trained.append(metrics["mean_gap"])
        untrained.append(metrics["mean_gap_untrained"])
        info = training.info
        print(f"{seed:>4}{info['episodes']:>9}{info['seconds']:>9.1f}{info.get('kept_at', '—'):>9}"
              f"{100 * info['training_gap']:>10.2f}%{100 * metrics['mean_gap']:>9.2f}%"
              f"{100 * metrics['mean_gap_untrained']:>10.2f}%{100 * metrics['wins']:>6.0f}%", flush=True)  # fmt: skip
    shops = family.held_out_shops(chosen)
    per_rule: dict[str, list[float]] = {}
    for k, shop in enumerate(shops):
        rules = family.rule_makespans(shop, breakdowns_seed=k)
        best = min(rules.values())
        for rule, made in rules.items():
            per_rule.setdefault(rule, []).append((made - best) / best)
    print(f"\nMean held-out gap to each shop's best fixed rule ({len(shops)} shops), mean ± sd over {args.seeds} seeds:")
    print(f"  trained policy   {spread(trained)} %")
    print(f"  untrained (MWKR) {100 * statistics.fmean(untrained):+.2f} %")
    print("  each fixed rule  " + "  ".join(f"{rule} {100 * statistics.fmean(v):+.2f} %" for rule, v in per_rule.items()))
    better = sum(t < u for t, u in zip(trained, untrained, strict=True))
    print(f"  trained below untrained for {better} of {args.seeds} seeds; {time.monotonic() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
