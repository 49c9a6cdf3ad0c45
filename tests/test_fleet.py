"""Server fleets (``--base-url A,B,C`` or ``@FILE``): the URL list, the fleet's choice of server
(least outstanding requests, failing servers rested with an exponential cool-down, probes, back
in service on a success), and whole runs against loopback servers of which one dies mid-run:
nothing lost, nothing duplicated, the dead server left alone but for the probes."""

from __future__ import annotations

import json
import math
import time

import pytest
from backend_fixtures import Server, fake_reply
from chat_fixtures import write_jsonl

from plamo_fast.cli import main
from plamo_fast.errors import PlamoFastError, UsageError
from plamo_fast.generation import fleet as fleet_module
from plamo_fast.generation.backends import SamplingOptions, load_backend, prompt_seed
from plamo_fast.generation.fleet import Fleet, base_urls

A, B, C = "http://127.0.0.1:1/v1", "http://127.0.0.1:2", "http://127.0.0.1:3/v1/"


@pytest.fixture
def servers():
    """``servers(**kwargs, ...)``: loopback servers, closed after the test."""
    made = []

    def make(*specs: dict) -> list[Server]:
        made.extend(Server(**spec) for spec in specs)
        return made[-len(specs) :]

    yield make
    for server in made:
        server.close()


def lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_base_urls_from_commas_lists_and_files(tmp_path):
    assert base_urls(None) == [] and base_urls("") == []
    assert base_urls(f" {A} , {B},") == [A, B]
    assert base_urls([A, f"{B},{C}"]) == [A, B, C]
    listed = tmp_path / "servers.txt"
    listed.write_text(f"# the fleet\n{A}\n\n{B}  # node 2\n")
    assert base_urls(f"@{listed}") == [A, B]
    listed.write_text(f"{A}\nlocalhost:8000\n")
    with pytest.raises(UsageError, match=r"servers.txt:2: 'localhost:8000' is not an http"):
        base_urls(f"@{listed}")
    with pytest.raises(UsageError, match="listed twice"):
        base_urls(f"{A},{A.removesuffix('/v1')}/")  # the same server, written otherwise
    with pytest.raises(UsageError, match="cannot read"):
        base_urls(f"@{tmp_path / 'missing.txt'}")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(UsageError, match="lists no URL"):
        base_urls(f"@{tmp_path / 'empty.txt'}")


def test_every_base_url_option_takes_a_fleet(tmp_path):
    """Every command's --base-url and --judge-base-url reads commas and @FILE; those declared
    with the shared option (cli/options.py) also take the option repeated."""
    import click
    import typer

    from plamo_fast.cli import app

    listed = tmp_path / "servers.txt"
    listed.write_text(f"{A}\n{B}\n")
    found, repeatable = [], []

    def walk(command, path):
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")
        for param in command.params:
            if param.name in ("base_url", "judge_base_url"):
                ctx = click.Context(command)
                if param.multiple:
                    assert param.process_value(ctx, [f"@{listed}"]) == [A, B], path
                    assert param.process_value(ctx, [A, f"{B},{C}"]) == [A, B, C], path
                    assert param.process_value(ctx, []) is None, path
                    with pytest.raises(UsageError, match="listed twice"):
                        param.process_value(ctx, [A, A])
                    repeatable.append(f"{path} {param.name}")
                else:
                    assert param.process_value(ctx, f"@{listed}") == f"{A},{B}", path
                with pytest.raises(UsageError):
                    param.process_value(ctx, ["ftp://x"] if param.multiple else "ftp://x")
                found.append(f"{path} {param.name}")

    walk(typer.main.get_command(app), "plamo-fast")
    expected = ["sample base_url", "score base_url", "eval jaster base_url",
                "eval mt-bench base_url", "eval mt-bench judge_base_url", "eval rakuda base_url",
                "eval rakuda judge_base_url", "eval compare judge_base_url",
                "demo judge_base_url"]  # fmt: skip
    assert {f"plamo-fast {e}" for e in expected} <= set(found), found
    assert {f"plamo-fast {e}" for e in expected} <= set(repeatable), repeatable


def test_a_repeated_base_url_reaches_the_backend_as_a_fleet(monkeypatch, tmp_path):
    """``sample --base-url A --base-url B,C`` hands the backend every server, in order."""
    from plamo_fast.cli import main
    from plamo_fast.sample import sample as sampling

    seen = {}

    def run(prompts, model, output, **kwargs):
        seen["base_url"] = kwargs["base_url"]
        return {}

    monkeypatch.setattr(sampling, "sample", run)
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "hi"}\n')
    args = ["sample", str(prompts), "--model", "m", "-o", str(tmp_path / "o.jsonl"),
            "--base-url", A, "--base-url", f"{B},{C}", "-q"]  # fmt: skip
    assert main(args) == 0
    assert seen["base_url"] == f"{A},{B},{C}" and base_urls(seen["base_url"]) == [A, B, C]


def small_fleet(n: int, per_server: int, cool_down: float) -> Fleet:
    fleet = Fleet([f"http://127.0.0.1:{9000 + i}" for i in range(n)], per_server)
    fleet.cool_down, fleet.cool_down_max = cool_down, 8 * cool_down
    return fleet


def test_fleet_picks_the_least_busy_and_rests_a_failing_server():
    fleet = small_fleet(2, per_server=2, cool_down=0.3)
    a, b = fleet.members
    far = time.monotonic() + 5

    def short():  # a request that finds no server within 50 ms
        with pytest.raises(PlamoFastError, match="no server could take a request"):
            fleet.acquire(set(), time.monotonic() + 0.05)

    (m1, sent1), (m2, _), (m3, sent3) = (fleet.acquire(set(), far) for _ in range(3))
    assert (m1, m2, m3) == (a, b, a)  # the least outstanding, in turn on a tie
    assert fleet.acquire(set(), far)[0] is b
    fleet.succeeded(b)
    # A connection error takes a server out at once; a request sent before it was taken out
    # and failing after does not lengthen its cool-down.
    fleet.failed(a, sent1, hard=True)
    first_until = a.down_until
    fleet.failed(a, sent3, hard=True)
    assert a.down_until == first_until and a.outstanding == 0 and a.cool_down == 0.3
    assert fleet.acquire(set(), far)[0] is b
    short()  # b is full, a out
    assert "127.0.0.1:9000 out" in fleet.progress_note()
    # After its cool-down: one probe at a time, not a full share.
    probe, sent = fleet.acquire(set(), far)
    assert probe is a and time.monotonic() >= first_until and a.probes == 1
    assert "127.0.0.1:9000 probing" in fleet.progress_note()
    short()
    fleet.failed(a, sent, hard=True)  # a failed probe: out twice as long
    assert a.cool_down == pytest.approx(0.6) and a.down_until - time.monotonic() > 0.5
    probe, _ = fleet.acquire(set(), far)
    assert probe is a and a.probes == 2
    fleet.succeeded(a)  # back in service, with a full share
    assert a.down_since is None
    assert [fleet.acquire(set(), far)[0] for _ in range(2)] == [a, a]
    short()
    for m in (a, a, b, b):
        fleet.released(m)
    # 5xx: out after two in a row (a request that failed on one server prefers another).
    m, sent = fleet.acquire(set(), far)
    fleet.failed(m, sent, hard=False)
    assert m.down_since is None
    again, sent = fleet.acquire({1 - m.index}, far)
    assert again is m
    fleet.failed(m, sent, hard=False)
    assert m.down_since is not None and m.cool_down == pytest.approx(0.3)


def test_when_every_server_is_out_requests_wait_and_then_all_go():
    fleet = small_fleet(1, per_server=3, cool_down=0.2)
    far = time.monotonic() + 5
    held = [fleet.acquire(set(), far) for _ in range(3)]
    fleet.failed(*held[0], hard=True)
    for m, sent in held[1:]:
        fleet.failed(m, sent, hard=True)  # sent before: the same failure
    started = time.monotonic()
    again = [fleet.acquire(set(), far) for _ in range(3)]  # a retry with backoff
    assert time.monotonic() - started >= 0.19 and len(again) == 3
    for m, sent in again:
        fleet.failed(m, sent, hard=True)
    assert fleet.members[0].cool_down == pytest.approx(0.4)  # doubled once, not three times


def test_a_server_dying_mid_run_loses_and_duplicates_nothing(tmp_path, servers, monkeypatch):
    """``sample`` over three servers, one killed after its 4th request (the requests in flight
    there dropped too): every prompt once, with the candidates a single server gives; each
    request answered once; the dead server gets nothing more but the probes, at most one per
    cool-down, each twice as long as the one before."""
    monkeypatch.setattr(fleet_module, "COOL_DOWN", 0.3)
    fast, dying, slow = servers({"delay": 0.05}, {"delay": 0.05, "die_after": 4}, {"delay": 0.1})
    prompts = [{"prompt": f"question {i}"} for i in range(60)]
    data = write_jsonl(tmp_path / "p.jsonl", prompts)
    out = tmp_path / "c.jsonl"
    listed = tmp_path / "fleet.txt"
    listed.write_text(f"{fast.url}\n{dying.url}\n{slow.url}\n")
    started = time.monotonic()
    args = ["sample", str(data), "--model", "m", "-o", str(out), "-n", "2", "--base-url",
            f"@{listed}", "--concurrency", "2", "--retries", "0", "-q"]  # fmt: skip
    assert main(args) == 0
    ended = time.monotonic()
    records = lines(out)
    assert [r["prompt_index"] for r in records] == list(range(60))
    for r in records:
        expected = fake_reply(r["prompt_messages"], 2, prompt_seed(0, r["prompt_index"]), 1.0)
        assert [(c["text"], c["finish_reason"]) for c in r["candidates"]] == expected
    assert fast.answered + dying.answered + slow.answered == 60  # no request answered twice
    assert dying.answered <= 4 and dying.dead and dying.dropped
    # What reached the dead server once the client knew: the probes alone.
    probes = sorted(t - dying.died_at for t in dying.dropped if t > dying.died_at + 0.15)
    most = math.floor(math.log2((ended - dying.died_at) / 0.3 + 1))
    assert ended - dying.died_at > 0.5 and len(probes) <= most, (probes, ended - started)
    for k, (before, after) in enumerate(zip(probes, probes[1:], strict=False)):
        assert after - before >= 0.3 * 2 ** (k + 1) * 0.9


def test_a_slow_server_gets_fewer_requests(servers):
    slow, fast = servers({"delay": 0.3}, {})
    backend = load_backend("openai", "m", base_url=[slow.url, fast.url], concurrency=2)
    assert backend.batch_size == 16 and backend.concurrency == 4
    conversations = [[{"role": "user", "content": f"q{i}"}] for i in range(30)]
    out = backend.generate(conversations, SamplingOptions(n=1), list(range(30)))
    assert len(out) == 30 and slow.answered + fast.answered == 30
    assert 1 <= slow.answered <= 8, (slow.answered, fast.answered)  # turn by turn: 15
    assert "/s" in backend.progress_note() and "127.0.0.1" in backend.progress_note()


def test_a_server_back_from_the_dead_gets_requests_again(servers, monkeypatch):
    monkeypatch.setattr(fleet_module, "COOL_DOWN", 0.1)
    alive, lazarus = servers({}, {"die_after": 0})
    backend = load_backend("openai", "m", base_url=f"{alive.url},{lazarus.url}", concurrency=2)
    conversations = [[{"role": "user", "content": f"q{i}"}] for i in range(8)]
    opts = SamplingOptions(n=1)
    assert len(backend.generate(conversations, opts, list(range(8)))) == 8
    assert alive.answered == 8 and lazarus.answered == 0 and lazarus.dropped
    lazarus.revive()
    time.sleep(0.35)  # every cool-down so far has ended
    backend.generate(conversations, opts, list(range(8)))
    assert lazarus.answered > 0 and backend.fleet.members[1].down_since is None


def test_a_fleet_all_down_fails_within_its_tries(servers, monkeypatch):
    monkeypatch.setattr(fleet_module, "COOL_DOWN", 0.05)
    dead = servers({"die_after": 0}, {"die_after": 0})
    backend = load_backend("openai", "m", base_url=[s.url for s in dead], retries=1)
    started = time.monotonic()
    with pytest.raises(PlamoFastError, match=r"after 3 tries"):
        backend.generate([[{"role": "user", "content": "q"}]], SamplingOptions(n=1), [0])
    assert time.monotonic() - started < 5
    assert sum(len(s.calls) for s in dead) == 3 and all(s.calls for s in dead)


def test_judging_through_a_fleet(tmp_path, servers):
    """``score --judge`` spreads its requests and survives a judge server dying."""
    one, two = servers({}, {"die_after": 3})
    data = write_jsonl(tmp_path / "c.jsonl", [{
        "prompt_index": i, "prompt_messages": [{"role": "user", "content": f"Explain {i}."}],
        "candidates": [{"text": t} for t in ("GOOD answer", "BAD answer")],
    } for i in range(10)])  # fmt: skip
    out = tmp_path / "s.jsonl"
    fleet = f"{one.url},{two.url}"
    assert main(["score", str(data), "-o", str(out), "--judge", "j", "--backend", "openai",
                 "--base-url", fleet, "--concurrency", "2", "-q"]) == 0  # fmt: skip
    assert [[c["score"] for c in r["candidates"]] for r in lines(out)] == [[9.0, 2.0]] * 10
    assert two.answered <= 3 and one.answered + two.answered == 20 and two.dropped
