"""The servers of one driver run and how it measures them: start or adopt, wait until they serve,
stop what is no longer needed; bench them and ask them for greedy outputs.

A mixin of ``driver.Run``, whose attributes it reads: ``out``, ``env``, ``dry_run``, ``table``
(the state file), ``servers`` (this run's), ``left()``, ``say()``, ``command()`` and ``record()``.
"""

from __future__ import annotations

import json
import os
import shlex
import time

from figures import summarise_alone, summarise_bench
from kits import E3
from servers import Server, http, log_figures, traceback_excerpt

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROMPTS = os.path.join(HERE, "prompts.jsonl")
# /server_info keys the record keeps: how SGLang resolved the flags it was given.
SERVER_INFO = ("attention_backend", "disable_cuda_graph", "cuda_graph_bs", "cuda_graph_max_bs",
               "mem_fraction_static", "max_running_requests", "max_mamba_cache_size", "mamba_scheduler_strategy",
               "disable_radix_cache", "disable_overlap_schedule", "context_length", "chunked_prefill_size",
               "speculative_algorithm", "speculative_num_steps", "speculative_eagle_topk",
               "speculative_num_draft_tokens", "max_total_num_tokens", "version")


class ServerControl:
    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Server:
        """Start ``name`` in its own session and write it to the state file; no waiting."""
        server = Server(name, argv, os.path.join(self.out, f"server-{name}.log"))
        self.servers[name] = server
        if self.dry_run:
            self.say(f"  start {name} on :{server.port}: {shlex.join(argv)}")
            return server
        os.makedirs(self.out, exist_ok=True)
        server.start(env or self.env)
        self.table.remember(name, server)
        return server

    def adopt_or_start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Server:
        """The live server an earlier call started with this very argv, else a new one; a live one
        with another argv is stopped first (same name, same port)."""
        live = None if self.dry_run else self.table.live(name)
        if live is not None and live.argv == argv:
            self.servers[name] = live
            self.say(f"  adopted {name} (pid {live.pid}, started {time.time() - live.started_wall:.0f} s ago)")
            return live
        if live is not None:
            live.stop()
            self.table.forget(name)
        return self.start(name, argv, env)

    def bring_up(self, name: str, argv: list[str], env: dict[str, str] | None = None, timeout: float = 420) -> dict:
        """Adopt or start ``name`` and wait until it serves. One load at a time: SGLang sizes its
        caches from the memory free before and after loading weights, so a neighbour allocating in
        between would leave it none."""
        server = self.adopt_or_start(name, argv, env)
        if self.dry_run:
            return {"state": "up"}
        state = server.wait_up(min(timeout, max(self.left() - 30, 10)))
        if state != "up" and server.adopted:
            server.stop()  # adopted but not serving: one fresh start, if the budget allows
            self.table.forget(name)
            server = self.start(name, argv, env)
            state = server.wait_up(min(timeout, max(self.left() - 30, 10)))
        log = server.log_tail(2_000_000)
        info = {"state": state, "seconds": round(time.time() - server.started_wall, 1), "adopted": server.adopted,
                "argv": argv, "log": os.path.basename(server.log_path), "log_figures": log_figures(log)}
        if state == "up":
            status, body = http(server.url + "/server_info", timeout=30)
            parsed = json_object(body) if status == 200 else {}
            info["server_info"] = {key: parsed.get(key) for key in SERVER_INFO if key in parsed}
        else:
            info["log_tail"] = server.log_tail(4000)
            info["traceback"] = traceback_excerpt(log)
        return info

    def stop(self, *names: str) -> None:
        for name in names:
            server = self.servers.pop(name, None)
            if server is not None and not self.dry_run:
                server.stop()
                self.table.forget(name)

    def keep_only(self, names: set[str]) -> None:
        """Stop every server, this call's or an earlier one's, that is not in ``names``."""
        self.stop(*[name for name in self.servers if name not in names])
        if not self.dry_run:
            stopped = self.table.stop_all_but(names)
            if stopped:
                self.say(f"  stopped {', '.join(stopped)}, left by an earlier call")

    # -- measuring -------------------------------------------------------------------------------
    def bench(self, phase: str, key: str, url_name: str, base_name: str | None, *extra: str) -> dict:
        """`eagle3-patch bench` against ``url_name`` (and ``base_name`` as baseline, if given); its
        report is kept beside the results, its figures in them."""
        base = ["--baseline-url", self.servers[base_name].url] if base_name else []
        result = self.command([*E3, "bench", "--url", self.servers[url_name].url, *base, "--prompts", PROMPTS,
                               "--ignore-eos", "--json", *extra], timeout=max(self.left(), 30))
        report = result.get("json")
        summary = summarise_bench(report) if base_name else summarise_alone(report)
        self.record(phase, key, {"rc": result["rc"], "summary": summary, "stderr": result.get("stderr", "")[-2000:]})
        if report is not None and not self.dry_run:
            with open(os.path.join(self.out, f"bench-{phase}-{key}.json"), "w", encoding="utf-8") as handle:
                json.dump(report, handle, indent=2)
        return summary

    def greedy(self, name: str, max_new_tokens: int) -> list[dict]:
        """Each prompt once, greedy, through /generate: the token ids and the verify count."""
        with open(PROMPTS, encoding="utf-8") as handle:
            prompts = [json.loads(line) for line in handle if line.strip()]
        if self.dry_run:
            self.say(f"  POST {self.servers[name].url}/generate x{len(prompts)} (greedy, {max_new_tokens} tokens)")
            return []
        outputs = []
        for prompt in prompts:
            status, body = http(self.servers[name].url + "/generate", {
                "text": prompt["text"], "sampling_params": {"max_new_tokens": max_new_tokens, "temperature": 0.0,
                                                            "ignore_eos": True}}, timeout=300)
            answer = json_object(body) if status == 200 else {}
            meta = answer.get("meta_info") or {}
            outputs.append({"id": prompt["id"], "http_status": status, "output_ids": answer.get("output_ids"),
                            "spec_verify_ct": meta.get("spec_verify_ct"),
                            "completion_tokens": meta.get("completion_tokens")})
        return outputs


def json_object(text: str) -> dict:
    try:
        parsed = json.loads(text)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
