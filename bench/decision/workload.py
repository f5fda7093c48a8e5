"""The benchmark's policy, users, studies and requests, as neutral data that each engine
translates into its own language (pacsguard YAML, Casbin CSV, Cedar text)."""

from __future__ import annotations

import random
from dataclasses import dataclass

ZONES = ("z0", "z1", "z2")
ROLES_PER_ZONE = 20
ACTIONS = ("query", "read", "export", "delete")
PURPOSES = ("treatment", "research", "audit", "emergency")
MODALITIES = ("CT", "MR", "US", "XA")


@dataclass(frozen=True)
class RuleSpec:
    id: str
    zone: str
    role: str
    action: str
    effect: str  # permit | forbid
    max_sensitivity: int
    purpose: str | None
    modality: str | None


@dataclass(frozen=True)
class User:
    id: str
    zone: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Study:
    id: str
    zone: str
    sensitivity: int
    modality: str


@dataclass(frozen=True)
class Ask:
    user: User
    study: Study
    action: str
    purpose: str


@dataclass(frozen=True)
class Workload:
    rules: tuple[RuleSpec, ...]
    users: tuple[User, ...]
    studies: tuple[Study, ...]
    asks: tuple[Ask, ...]
    batch: tuple[Ask, ...]  # one user filtering 1,000 studies


def role_names() -> list[str]:
    return [f"r{i:02d}" for i in range(ROLES_PER_ZONE)]


def juniors(role: str) -> list[str]:
    """Roles include the next one, in chains of five: r00 > r01 > ... > r04, r05 > ..."""
    i = int(role[1:])
    return [f"r{i + 1:02d}"] if i % 5 != 4 else []


def make(n_rules: int, n_users: int = 10_000, n_studies: int = 2_000, n_asks: int = 3_000, seed: int = 7) -> Workload:
    rng = random.Random(seed)
    names = role_names()
    rules = tuple(
        RuleSpec(
            id=f"rule-{i}",
            zone=rng.choice(ZONES),
            role=rng.choice(names),
            action=rng.choice(ACTIONS),
            effect="forbid" if rng.random() < 0.15 else "permit",
            max_sensitivity=rng.randint(1, 5),
            purpose=rng.choice(PURPOSES) if rng.random() < 0.5 else None,
            modality=rng.choice(MODALITIES) if rng.random() < 0.4 else None,
        )
        for i in range(n_rules)
    )
    users = tuple(
        User(f"u{i}", zone, tuple(sorted(set(rng.sample(names, rng.randint(1, 2))))))
        for i, zone in ((i, rng.choice(ZONES)) for i in range(n_users))
    )
    studies = tuple(
        Study(f"s{i}", rng.choice(ZONES), rng.randint(0, 5), rng.choice(MODALITIES)) for i in range(n_studies)
    )

    def ask(user: User) -> Ask:
        home = [s for s in rng.sample(studies, 3) if s.zone == user.zone]
        study = home[0] if home and rng.random() < 0.8 else rng.choice(studies)
        return Ask(user, study, rng.choice(ACTIONS), rng.choice(PURPOSES[:2]))

    asks = tuple(ask(rng.choice(users)) for _ in range(n_asks))
    filterer = rng.choice(users)
    batch = tuple(Ask(filterer, study, "query", "treatment") for study in studies[:1000])
    return Workload(rules, users, studies, asks, batch)
