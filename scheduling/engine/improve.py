"""The improvement phase: tabu search on the critical path, with Q-learning choosing the moves.

A schedule is read as a sequence of operations per machine. Its makespan is the longest path
through the shop's graph: the jobs' arcs plus the machines' sequences. Only swapping two
adjacent operations on that path can shorten it. The N5 neighbourhood (Nowicki and Smutnicki)
swaps the first two or the last two operations of each critical block, and a swap there never
creates a cycle. Each move is first estimated in constant time from the heads and tails
(Taillard's estimate); only the chosen one is applied and the schedule recomputed.

Q-learning picks the move kind at each step. The actions are the best N5 move that is not tabu
(intensify), a random critical swap (diversify), or a restart from the best schedule with a few
random critical swaps (escape). The state is how long the search has gone without
improvement, and whether the last step improved. The reward is the relative fall of the
makespan. `info` records the makespan before and after the phase and what each kind of move
contributed.

Classic job shop only: each operation on its one machine. A flexible problem keeps the
machines its construction chose.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from scheduling.engine.instance import Instance, gettext_noop, phrase
from scheduling.engine.schedule import Schedule, ScheduledOp

ACTIONS = ("best", "random", "restart")


class _Shop:
    """Operations numbered 0..N−1, job by job; machine sequences; heads, tails and the critical path."""

    def __init__(self, instance: Instance, schedule: Schedule):
        self.index: dict[tuple[int, int], int] = {}
        self.job_of, self.op_of, self.dur, self.mach = [], [], [], []
        self.release = []
        for j, job in enumerate(instance.jobs):
            for k, _op in enumerate(job.operations):
                self.index[(j, k)] = len(self.dur)
                self.job_of.append(j)
                self.op_of.append(k)
                self.dur.append(0)
                self.mach.append(0)
                self.release.append(job.release if k == 0 else 0)
        n = len(self.dur)
        self.n = n
        self.job_prev = [-1] * n
        self.job_next = [-1] * n
        for i in range(n):
            if i + 1 < n and self.job_of[i + 1] == self.job_of[i]:
                self.job_next[i] = i + 1
                self.job_prev[i + 1] = i
        self.seqs: list[list[int]] = [[] for _ in instance.machines]
        for o in sorted(schedule.operations, key=lambda o: (o.start, o.end)):
            i = self.index[(o.job, o.op)]
            self.dur[i], self.mach[i] = o.end - o.start, o.machine
            self.seqs[o.machine].append(i)
        self.evaluate()

    def evaluate(self) -> int:
        n = self.n
        mp, mn = [-1] * n, [-1] * n
        for seq in self.seqs:
            for a, b in zip(seq, seq[1:], strict=False):
                mn[a], mp[b] = b, a
        self.mach_prev, self.mach_next = mp, mn
        indeg = [(self.job_prev[i] >= 0) + (mp[i] >= 0) for i in range(n)]
        order = [i for i in range(n) if indeg[i] == 0]
        head = [0] * n
        dur, jn, jp = self.dur, self.job_next, self.job_prev
        k = 0
        while k < len(order):
            i = order[k]
            k += 1
            start = self.release[i]
            if jp[i] >= 0:
                start = max(start, head[jp[i]] + dur[jp[i]])
            if mp[i] >= 0:
                start = max(start, head[mp[i]] + dur[mp[i]])
            head[i] = start
            for s in (jn[i], mn[i]):
                if s >= 0:
                    indeg[s] -= 1
                    if indeg[s] == 0:
                        order.append(s)
        if len(order) < n:
            raise ValueError(
                gettext_noop("The improvement phase made machine orders that contradict the jobs' orders (a cycle).")
            )
        tail = [0] * n  # longest path after the operation ends
        for i in reversed(order):
            t = 0
            if jn[i] >= 0:
                t = tail[jn[i]] + dur[jn[i]]
            if mn[i] >= 0:
                t = max(t, tail[mn[i]] + dur[mn[i]])
            tail[i] = t
        self.head, self.tail, self.order = head, tail, order
        self.makespan = max(head[i] + dur[i] for i in range(n))
        return self.makespan

    def critical_blocks(self) -> list[list[int]]:
        """The critical path's operations grouped in blocks of the same machine, from start to end."""
        head, tail, dur = self.head, self.tail, self.dur
        end = self.makespan
        current = min((i for i in range(self.n) if head[i] + dur[i] + tail[i] == end), key=lambda i: head[i])
        path = [current]
        while True:
            after = head[current] + dur[current]
            nxt = -1
            for s in (self.mach_next[current], self.job_next[current]):  # prefer the machine arc: longer blocks
                if s >= 0 and head[s] == after and head[s] + dur[s] + tail[s] == end:
                    nxt = s
                    break
            if nxt < 0:
                break
            path.append(nxt)
            current = nxt
        blocks: list[list[int]] = []
        for i in path:
            if blocks and self.mach[blocks[-1][-1]] == self.mach[i] and self.mach_next[blocks[-1][-1]] == i:
                blocks[-1].append(i)
            else:
                blocks.append([i])
        return blocks

    def moves(self) -> list[tuple[int, int]]:
        """N5: swap the first two and the last two operations of each block (not the path's ends)."""
        blocks = self.critical_blocks()
        out = []
        for b, block in enumerate(blocks):
            if len(block) < 2:
                continue
            if b > 0:
                out.append((block[0], block[1]))
            if b < len(blocks) - 1 and (b == 0 or len(block) > 2):
                out.append((block[-2], block[-1]))
        return list(dict.fromkeys(out))

    def estimate(self, u: int, v: int) -> int:
        """The makespan after swapping u and v (u just before v on their machine), estimated in O(1)."""
        head, tail, dur, jp, jn = self.head, self.tail, self.dur, self.job_prev, self.job_next
        mp, mn = self.mach_prev[u], self.mach_next[v]
        rv = max(head[jp[v]] + dur[jp[v]] if jp[v] >= 0 else self.release[v], head[mp] + dur[mp] if mp >= 0 else 0)
        ru = max(head[jp[u]] + dur[jp[u]] if jp[u] >= 0 else self.release[u], rv + dur[v])
        qu = max(tail[jn[u]] + dur[jn[u]] if jn[u] >= 0 else 0, tail[mn] + dur[mn] if mn >= 0 else 0)
        qv = max(tail[jn[v]] + dur[jn[v]] if jn[v] >= 0 else 0, qu + dur[u])
        return max(rv + dur[v] + qv, ru + dur[u] + qu)

    def swap(self, u: int, v: int) -> None:
        seq = self.seqs[self.mach[u]]
        a = seq.index(u)
        seq[a], seq[a + 1] = seq[a + 1], seq[a]

    def snapshot(self) -> list[list[int]]:
        return [list(s) for s in self.seqs]

    def restore(self, seqs: list[list[int]]) -> None:
        self.seqs = [list(s) for s in seqs]
        self.evaluate()

    def schedule(self) -> Schedule:
        return Schedule(
            [
                ScheduledOp(self.job_of[i], self.op_of[i], self.mach[i], self.head[i], self.head[i] + self.dur[i])
                for i in range(self.n)
            ]
        )


def improve(
    instance: Instance,
    schedule: Schedule,
    *,
    time_limit: float,
    seed: int = 0,
    iterations: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[Schedule, dict]:
    """A schedule at least as short as `schedule`, found within `time_limit` seconds (or `iterations`).

    Deterministic for a seed and a number of iterations. Under a time limit alone the number of
    iterations depends on the machine, as with Q-learning.
    """
    if instance.flexible:
        return schedule, {"skipped": gettext_noop("flexible shop: the improvement phase reorders machines it does not reassign")}
    started = time.monotonic()
    deadline = started + time_limit
    rng = random.Random(seed)
    shop = _Shop(instance, schedule)
    before = shop.makespan
    best, best_seqs = shop.makespan, shop.snapshot()
    tabu: dict[tuple[int, int], int] = {}
    tenure = 8 + instance.n_jobs // max(1, instance.n_machines)
    q: dict[tuple[int, int], list[float]] = {}
    alpha, gamma, epsilon = 0.2, 0.8, 0.1
    since_best, improved_last = 0, 0
    gains = dict.fromkeys(ACTIONS, 0)
    used = dict.fromkeys(ACTIONS, 0)
    step = 0
    ended = "time limit" if iterations is None else "iterations"
    while True:
        if iterations is not None and step >= iterations:
            break
        if step % 16 == 0 and (time.monotonic() >= deadline or (should_stop and should_stop())):
            ended = "time limit" if time.monotonic() >= deadline else "stopped"
            break
        moves = shop.moves()
        if not moves:  # one critical block: no swap on the path can shorten it (without release times: optimal)
            ended = "one critical block left"
            break
        step += 1
        state = (min(3, since_best // 50), improved_last)
        row = q.setdefault(state, [0.0, 0.0, 0.0])
        action = rng.randrange(3) if rng.random() < epsilon else row.index(max(row))
        current = shop.makespan
        if ACTIONS[action] == "best":
            scored = []
            for u, v in moves:
                value = shop.estimate(u, v)
                if tabu.get((v, u), 0) > step and value >= best:
                    continue
                scored.append((value, rng.random(), u, v))
            u, v = min(scored)[2:] if scored else rng.choice(moves)
            shop.swap(u, v)
            tabu[(u, v)] = step + tenure + rng.randrange(3)
        elif ACTIONS[action] == "random":
            u, v = rng.choice(moves)
            shop.swap(u, v)
            tabu[(u, v)] = step + tenure
        else:
            shop.restore(best_seqs)
            for _ in range(rng.randint(2, 5)):
                u, v = rng.choice(shop.moves() or [(0, 0)])
                if u != v:
                    shop.swap(u, v)
                    shop.evaluate()
        shop.evaluate()
        reward = (current - shop.makespan) / max(1, current)
        used[ACTIONS[action]] += 1
        improved_last = int(shop.makespan < current)
        if shop.makespan < best:
            gains[ACTIONS[action]] += best - shop.makespan
            best, best_seqs, since_best = shop.makespan, shop.snapshot(), 0
            if progress:
                fraction = min(0.99, (time.monotonic() - started) / time_limit)
                progress(fraction, phrase(gettext_noop("improvement: best %(best)s"), best=best))
        else:
            since_best += 1
        following = q.setdefault((min(3, since_best // 50), improved_last), [0.0, 0.0, 0.0])
        row[action] += alpha * (reward + gamma * max(following) - row[action])
    shop.restore(best_seqs)
    info = {
        "before": before,
        "after": shop.makespan,
        "iterations": step,
        "ended": ended,
        "seconds": round(time.monotonic() - started, 3),
        "moves_used": used,
        "gain_by_move": gains,
    }
    return shop.schedule(), info
