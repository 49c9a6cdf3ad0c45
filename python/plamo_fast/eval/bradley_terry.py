"""Bradley–Terry ratings from pairwise games, with a first-position advantage, as Rakuda's
``make_ranking.py`` (``compute_bt_mle``) fits them.

Each game ``(first, second, y)`` has ``y`` 1 when the model shown first won, 0 when the second
won, 0.5 for a tie. The model: ``P(first wins) = sigmoid(alpha + beta[first] - beta[second])``,
``alpha`` the advantage of the first position (a judge's position bias), the betas summing to 0.
The maximum-likelihood fit is found by Newton's method (the log-likelihood is concave); ratings
are reported as Rakuda does, ``scale / ln(base) * beta + init`` (400, 10, 1000: an Elo-like
scale). The interval is a bootstrap over games (Rakuda: 500 rounds, the 16th-84th percentiles as
one sigma); the 95% interval is given too.
"""

from __future__ import annotations

import math

import numpy as np

SCALE, BASE, INIT = 400.0, 10.0, 1000.0
ROUNDS = 500


def _design(games, index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """The columns: 1 (alpha), then beta_1..beta_{n-1} (beta_0 = -their sum)."""
    n = len(index)
    x = np.zeros((len(games), n))
    x[:, 0] = 1.0
    y = np.empty(len(games))
    for m, (first, second, outcome) in enumerate(games):
        for model, sign in ((first, 1.0), (second, -1.0)):
            k = index[model]
            if k == 0:
                x[m, 1:] -= sign
            else:
                x[m, k] += sign
        y[m] = outcome
    return x, y


def fit(games: list[tuple[str, str, float]], max_steps: int = 100) -> dict:
    """``{"ratings": {model: rating}, "advantage": rating points of the first position,
    "converged": bool}`` (not converged: a model won or lost everything, its rating is
    unbounded)."""
    models = list(dict.fromkeys([g[0] for g in games] + [g[1] for g in games]))
    index = {m: k for k, m in enumerate(models)}
    x, y = _design(games, index)
    theta = np.zeros(x.shape[1])
    converged = False
    for _ in range(max_steps):
        p = 1.0 / (1.0 + np.exp(-(x @ theta)))
        gradient = x.T @ (y - p)
        hessian = (x * (p * (1 - p))[:, None]).T @ x + 1e-12 * np.eye(len(theta))
        step = np.linalg.solve(hessian, gradient)
        theta += step
        if np.max(np.abs(step)) < 1e-10:
            converged = True
            break
    beta = np.concatenate([[-np.sum(theta[1:])], theta[1:]])
    unit = SCALE / math.log(BASE)
    return {
        "ratings": {m: float(unit * beta[index[m]] + INIT) for m in models},
        "advantage": float(unit * theta[0]),
        "converged": converged,
    }


def bootstrap(games: list[tuple[str, str, float]], rounds: int = ROUNDS, seed: int = 0) -> dict:
    """Per model: the rating of all games, and the median, one-sigma (16th-84th percentile) and
    95% bounds of the ratings fitted on ``rounds`` resamplings of the games (fixed seed)."""
    rng = np.random.default_rng(seed)
    full = fit(games)
    samples: dict[str, list[float]] = {m: [] for m in full["ratings"]}
    advantages = []
    for _ in range(rounds):
        picked = [games[i] for i in rng.integers(0, len(games), len(games))]
        result = fit(picked)
        advantages.append(result["advantage"])
        for model in samples:
            if model in result["ratings"]:
                samples[model].append(result["ratings"][model])
    table = {}
    for model, values in samples.items():
        lo, med, hi, lo95, hi95 = np.quantile(values, [0.16, 0.5, 0.84, 0.025, 0.975])
        table[model] = {
            "rating": full["ratings"][model],
            "median": float(med),
            "lower": float(lo),
            "upper": float(hi),
            "interval_95": [float(lo95), float(hi95)],
        }
    return {
        "models": dict(sorted(table.items(), key=lambda kv: -kv[1]["rating"])),
        "advantage": full["advantage"],
        "advantage_interval_95": [float(q) for q in np.quantile(advantages, [0.025, 0.975])],
        "converged": full["converged"],
        "games": len(games),
        "rounds": rounds,
    }
