"""`bench --concurrency` against a batching stand-in whose true throughput is known.

    python benchmarks/bench_load.py [--levels 1,4,16,64] [--max-new-tokens 64] [--text]

``--text`` prints bench's own text report instead of checking it (the sample in benchmarks/README.md).

Two stand-in SGLang servers run in this process (aiohttp.web), each a batch engine: every
pass serves all requests live when it starts, then each gets its next tokens. A pass costs
``base + per_request x batch`` seconds, scheduled on absolute deadlines so Python overhead
does not stretch it:

- plain:   10 ms + 1 ms per request, 1 token per request per pass;
- EAGLE-3: 12 ms + 5 ms per request (verifying drafts costs more per extra request than
  a decode step), the prefill token then 3 tokens per pass: 64 tokens in 22 passes, of which
  21 verify (SGLang counts no verify for the prefill, so its tau is 64 / 21).

So a full batch of N serves N x 64 / 22 / pass-time tok/s, and EAGLE-3 wins while
64 / 22 x (10 + N) > 12 + 5 N, i.e. up to N = 8: with levels 1,4,16,64 the crossover is
last_win 4 (true speedup 1.27x), first_loss 16 (0.82x). The script runs the real CLI as a process, then compares each
level's reported throughput with (a) that analytic figure and (b) what the stand-in itself
served, by its own clock, during its full-batch passes (a loaded machine wakes the stand-in
late now and then, so it serves a little less than the analytic figure).
Targets from issue 8: within 15 % of the true throughput, within 10 % of what the stand-in
served at 64 streams, and the right crossover; from issue 22, the speed model's round cost c within
5 % of what the stand-ins' passes took (EAGLE-3's over plain's, as the requests in them saw them),
shown beside the analytic (12 + 5N) / (10 + N), which a late-waking stand-in misses as it misses
the analytic throughput.
Run by hand: timing is this machine's.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

SRC = Path(__file__).resolve().parent.parent / "src"


@dataclass(frozen=True)
class Cost:
    base: float
    per_request: float
    tokens_per_pass: int  # after the prefill pass, which brings 1 token
    speculative: bool

    def pass_time(self, batch: int) -> float:
        return self.base + self.per_request * batch

    def true_throughput(self, n: int, max_new_tokens: int) -> float:
        passes = 1 + math.ceil((max_new_tokens - 1) / self.tokens_per_pass)
        return n * (max_new_tokens / passes) / self.pass_time(n)


PLAIN = Cost(0.010, 0.001, 1, speculative=False)
EAGLE3 = Cost(0.012, 0.005, 3, speculative=True)


@dataclass
class Live:
    ids: list[int]
    queue: asyncio.Queue
    sent: int = 0
    passes: int = 0


@dataclass
class Engine:
    """One stand-in server: a batch loop and the log of every pass as it really ran
    (start, end after its chunks were handed out, batch, tokens)."""

    cost: Cost
    live: list[Live] = field(default_factory=list)
    log: list[tuple[float, float, int, int]] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        deadline = time.perf_counter()
        while True:
            if not self.live:
                self.wake.clear()
                await self.wake.wait()
            batch = list(self.live)
            start = time.perf_counter()
            deadline = max(start, deadline) + self.cost.pass_time(len(batch))
            await asyncio.sleep(max(0.0, deadline - time.perf_counter()))
            tokens = 0
            for live in batch:
                step = 1 if live.sent == 0 else self.cost.tokens_per_pass
                step = min(step, len(live.ids) - live.sent)
                live.sent += step
                live.passes += 1
                tokens += step
                finished = live.sent == len(live.ids)
                if finished:
                    self.live.remove(live)
                live.queue.put_nowait(self._chunk(live, finished))
            self.log.append((start, time.perf_counter(), len(batch), tokens))

    def _chunk(self, live: Live, finished: bool) -> dict:
        meta = {"completion_tokens": live.sent, "finish_reason": None}
        if finished:
            meta["finish_reason"] = {"type": "length", "length": live.sent}
            if self.cost.speculative:
                verify = live.passes - 1  # the prefill pass is no verify
                accepted = live.sent - 1 - verify  # each verify pass brings one token of its own
                meta.update(spec_verify_ct=verify, spec_accept_length=live.sent / max(verify, 1),
                            spec_num_correct_drafts=accepted, spec_num_proposed_drafts=verify * 3)
        return {"text": "", "output_ids": live.ids[: live.sent], "meta_info": meta}

    def app(self, port_box: list[int]) -> web.Application:
        async def server_info(request: web.Request) -> web.Response:
            return web.json_response({
                "model_path": "stand-in/batching", "version": "stand-in", "port": port_box[0],
                "speculative_algorithm": "EAGLE3" if self.cost.speculative else None,
                "speculative_num_steps": 3 if self.cost.speculative else None,
                "speculative_eagle_topk": 1 if self.cost.speculative else None,
                "speculative_num_draft_tokens": 4 if self.cost.speculative else None,
                "incremental_streaming_output": False,
            })

        async def generate(request: web.Request) -> web.StreamResponse:
            body = await request.json()
            n = body["sampling_params"]["max_new_tokens"]
            seed = hashlib.sha256(body["text"].encode()).digest()
            live = Live([seed[i % 32] * 1000 + i for i in range(n)], asyncio.Queue())
            self.live.append(live)
            self.wake.set()
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            while True:
                chunk = await live.queue.get()
                await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                if chunk["meta_info"]["finish_reason"] is not None:
                    break
            await response.write(b"data: [DONE]\n\n")
            return response

        app = web.Application()
        app.router.add_get("/server_info", server_info)
        app.router.add_post("/generate", generate)
        return app


def segments(log: list[tuple[float, float, int, int]], gap: float = 0.5) -> list[list[tuple[float, float, int, int]]]:
    """The pass log split where the server sat idle (the other server's turn): warm-up, then one per level."""
    parts: list[list] = []
    for entry in log:
        if not parts or entry[0] - parts[-1][-1][1] > gap:
            parts.append([])
        parts[-1].append(entry)
    return parts


def served(passes: list[tuple[float, float, int, int]], n: int) -> float | None:
    full = [p for p in passes if p[2] == n]
    seconds = sum(end - start for start, end, _, _ in full)
    return sum(p[3] for p in full) / seconds if seconds else None


def pass_interval(passes: list[tuple[float, float, int, int]]) -> float | None:
    """The time from one pass to the next as the requests in it saw it: start to next start (the
    last: to its end), weighted by the requests in each pass."""
    weight = sum(batch for _, _, batch, _ in passes)
    if not weight:
        return None
    nexts = [start for start, _, _, _ in passes[1:]] + [passes[-1][1]]
    return sum(batch * (nxt - start) for (start, _, batch, _), nxt in zip(passes, nexts, strict=True)) / weight


def check_speed_model(models: list[dict], engines: dict[str, Engine]) -> bool:
    """bench's round cost c against the engines': true, one EAGLE-3 pass over one plain pass at the
    level's batch; served, the same ratio of what the passes really took, as the requests saw them
    (the target: a stand-in that wakes late stretches its passes, and bench should see just that)."""
    ok = True
    print(f"\n{'conc':>4}  {'bench c':>7} {'true c':>7} {'err':>6} {'served':>7} {'err':>6}  "
          f"{'predicted':>9} {'measured':>8} {'ratio':>6}")
    for index, model in enumerate(models):
        n = model["concurrency"]
        true = EAGLE3.pass_time(n) / PLAIN.pass_time(n)
        intervals = [pass_interval(segments(engine.log)[index + 1]) for engine in engines.values()]
        served = intervals[0] / intervals[1] if all(intervals) else float("nan")
        cost = model["round_cost"]
        if cost is None:
            print(f"{n:>4}  not given: {model['unavailable']}")
            ok = False
            continue
        err_true, err_served = cost / true - 1, cost / served - 1
        ok &= abs(err_served) <= 0.05
        print(f"{n:>4}  {cost:>7.3f} {true:>7.3f} {err_true:>+6.1%} {served:>7.3f} {err_served:>+6.1%}  "
              f"{model['predicted_speedup']:>8.2f}x {model['measured_speedup']:>7.2f}x "
              f"{model['predicted_over_measured']:>6.3f}")
    return ok


async def main(levels: str, max_new_tokens: int, runs: int, text: bool) -> int:
    engines = {"eagle3": Engine(EAGLE3), "baseline": Engine(PLAIN)}
    urls, runners, loops = {}, [], []
    for role, engine in engines.items():
        port_box = [0]
        runner = web.AppRunner(engine.app(port_box), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_box[0] = site._server.sockets[0].getsockname()[1]
        urls[role] = f"http://127.0.0.1:{port_box[0]}"
        runners.append(runner)
        loops.append(asyncio.create_task(engine.run()))
    args = ["--url", urls["eagle3"], "--baseline-url", urls["baseline"], "--concurrency", levels,
            "--max-new-tokens", str(max_new_tokens), "--ignore-eos", "--bucket", "chat", "--runs", str(runs),
            "--timeout", "600"]
    env = {**os.environ, "PYTHONPATH": str(SRC), "NO_COLOR": "1"}
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eagle3_patch", "bench", *args, *([] if text else ["--json"]),
        stdout=asyncio.subprocess.PIPE, env=env)
    out, _ = await process.communicate()
    elapsed = time.perf_counter() - started
    for task in loops:
        task.cancel()
    for runner in runners:
        await runner.cleanup()
    if process.returncode != 0:
        print(f"bench exited {process.returncode}", file=sys.stderr)
        return 1
    if text:
        print(out.decode())
        return 0
    report = json.loads(out)
    ok = True
    print(f"bench --concurrency {levels} --max-new-tokens {max_new_tokens}: {elapsed:.0f} s wall\n")
    print(f"{'conc':>4}  {'server':<8} {'bench tok/s':>11} {'true':>8} {'err':>6} {'served':>8} {'err':>6}")
    for index, level in enumerate(report["levels"]):
        n = level["concurrency"]
        for role, engine in engines.items():
            measured = level[role]["throughput_tok_s"]
            true = engine.cost.true_throughput(n, max_new_tokens)
            got = served(segments(engine.log)[index + 1], n)
            err_true = measured / true - 1
            err_served = measured / got - 1 if got else float("nan")
            ok &= abs(err_true) <= 0.15 and (n != 64 or abs(err_served) <= 0.10)
            print(f"{n:>4}  {role:<8} {measured:>11.1f} {true:>8.1f} {err_true:>+6.1%} "
                  f"{got or 0:>8.1f} {err_served:>+6.1%}")
    ns = [level["concurrency"] for level in report["levels"]]
    wins = [EAGLE3.true_throughput(n, max_new_tokens) > PLAIN.true_throughput(n, max_new_tokens) for n in ns]
    streak = next((i for i, win in enumerate(wins) if not win), len(wins))
    expected = {"last_win": ns[streak - 1] if streak else None, "first_loss": ns[streak] if streak < len(ns) else None}
    print(f"\ncrossover reported {report['crossover']}, true {expected}")
    ok &= report["crossover"] == expected
    ok &= check_speed_model(report["speed_model"]["levels"], engines)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,4,16,64")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--text", action="store_true")
    options = parser.parse_args()
    sys.exit(asyncio.run(main(options.levels, options.max_new_tokens, options.runs, options.text)))
