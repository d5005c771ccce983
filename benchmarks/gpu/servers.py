"""SGLang server processes that may outlive the device call that started them.

The device tool ends every process of a call's session when the call returns, except one that
started a session of its own. So each server starts with ``start_new_session=True`` and is
written to a state file (pid, port, argv, log, start time); a later call adopts a live one whose
argv is the same, instead of loading 55 GB again, and stops any other. A pid alone is not trusted:
the process must have the start time recorded for it (``/proc/PID/stat``), or the pid was reused.
Not its command line: ``eagle3-patch serve`` execs SGLang in the same process.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import time
import urllib.error
import urllib.request

READY_LINE = "fired up and ready to roll"


def http(url: str, body: dict | None = None, timeout: float = 5) -> tuple[int | None, str]:
    """(HTTP status or None when nothing answered, the body or the error); POSTs ``body`` as JSON."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (OSError, ValueError) as exc:
        return None, repr(exc)


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the command name: state is field 3, starttime field 22 (proc(5)).
    return None if fields[0] == "Z" else int(fields[19])


def port_of(argv: list[str]) -> int:
    """The port a server's argv tells it to listen on (``--port N``, SGLang's default 30000)."""
    for index, arg in enumerate(argv[:-1]):
        if arg == "--port":
            return int(argv[index + 1])
    return 30000


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:  # state, then ppid, then pgrp
            members.append(int(entry))
    return members


class Server:
    """One server process group. ``child``: this process spawned it (and reaps it); an adopted one,
    started by an earlier call, is watched through /proc alone."""

    def __init__(self, name: str, argv: list[str], log_path: str) -> None:
        self.name, self.argv, self.log_path = name, argv, log_path
        self.port = port_of(argv)
        self.pid: int | None = None
        self.start_ticks: int | None = None
        self.started_wall = 0.0
        self.adopted = False
        self.child = False
        self._exit: int | None = None
        self._read_to = 0  # how far said_ready has read the log
        self._ready = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict[str, str]) -> None:
        """Spawn in a session of its own, output to the log. Not through subprocess.Popen: the
        process is meant to outlive this one, which a Popen object would warn about."""
        with open(self.log_path, "ab") as log:
            log.write(f"$ {shlex.join(self.argv)}\n".encode())
            log.flush()
            self.pid = os.posix_spawnp(self.argv[0], self.argv, env, setsid=True, file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log.fileno(), 1), (os.POSIX_SPAWN_DUP2, log.fileno(), 2)])
        self.child, self.started_wall = True, time.time()
        self.start_ticks = process_start(self.pid)

    def _reap(self) -> None:
        if not self.child or self._exit is not None:
            return
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.child = False
            return
        if pid:
            self._exit = os.waitstatus_to_exitcode(status)

    def alive(self) -> bool:
        self._reap()
        if self._exit is not None or self.pid is None or self.start_ticks is None:
            return False
        return process_start(self.pid) == self.start_ticks

    def exit_code(self) -> int | None:
        """How the process ended (a negative signal number when killed); None while it runs, or
        when it was not this process's child."""
        self._reap()
        return self._exit

    def wait_exit(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.exit_code()

    def healthy(self) -> bool:
        return http(self.url + "/health")[0] == 200

    def wait_up(self, timeout: float, clock=time.monotonic, pause: float = 1.0) -> str:
        """'up' once the log says so and /health answers, 'exited' or 'timeout' otherwise. Asked
        again after 0.05 s, then twice as long each time up to ``pause``: an adopted server
        answers at once, a 27B one loads for minutes."""
        deadline, wait = clock() + timeout, 0.05
        while clock() < deadline:
            if not self.alive():
                return "exited"
            if self.said_ready() and self.healthy():
                return "up"
            time.sleep(wait)
            wait = min(wait * 2, pause)
        return "timeout"

    def stop(self) -> None:
        """SIGTERM to the group, then SIGKILL; returns once no process of the group is left. Not
        once the leader is gone: SGLang's scheduler, a child, holds the GPU memory, and the next
        server sizes its caches from the memory free when it starts."""
        if self.pid is None or not self.alive():  # the group is ours only while its leader is
            return
        for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                self._reap()
                if not group_members(self.pid):
                    return
                time.sleep(0.2)

    def said_ready(self) -> bool:
        """The log has SGLang's ready line, however much it logged after (a server adopted after
        serving a benchmark has logged megabytes since)."""
        if not self._ready:
            try:
                with open(self.log_path, "rb") as handle:
                    start = max(0, self._read_to - len(READY_LINE))  # the line may straddle two reads
                    handle.seek(start)
                    chunk = handle.read()
            except OSError:
                return False
            self._read_to = start + len(chunk)
            self._ready = READY_LINE.encode() in chunk
        return self._ready

    def log_tail(self, size: int = 8000) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(max(0, os.path.getsize(self.log_path) - size))
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def to_state(self) -> dict:
        return {"pid": self.pid, "start_ticks": self.start_ticks, "argv": self.argv, "log": self.log_path,
                "started_wall": self.started_wall}


class ServerTable:
    """The state file: every server this machine's calls started and may still run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> dict[str, dict]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}

    def save(self, entries: dict[str, dict]) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(entries, handle, indent=2)
        os.replace(tmp, self.path)

    def remember(self, name: str, server: Server) -> None:
        entries = self.load()
        entries[name] = server.to_state()
        self.save(entries)

    def forget(self, name: str) -> None:
        entries = self.load()
        if entries.pop(name, None) is not None:
            self.save(entries)

    def live(self, name: str) -> Server | None:
        """The recorded server ``name`` as an adoptable Server if its process still runs its argv."""
        entry = self.load().get(name)
        if not entry:
            return None
        server = Server(name, entry["argv"], entry["log"])
        server.pid, server.start_ticks = entry["pid"], entry.get("start_ticks")
        server.started_wall, server.adopted = entry["started_wall"], True
        return server if server.alive() else None

    def stop_all_but(self, keep: set[str]) -> list[str]:
        """Stop every recorded live server not named in ``keep``; returns the names stopped."""
        stopped = []
        for name in sorted(self.load()):
            if name in keep:
                continue
            server = self.live(name)
            if server is not None:
                server.stop()
                stopped.append(name)
            self.forget(name)
        return stopped


def log_figures(log: str) -> dict:
    """What SGLang 0.5.12 logged about sizing and start-up (model_runner, memory_pool, scheduler)."""
    patterns = {
        "load_weight_s": r"Load weight end\. elapsed=([\d.]+) s",
        "weight_mem_gb": r"Load weight end\..*?mem usage=([\d.]+) GB",
        "max_mamba_cache_size": r"Mamba Cache is allocated\. max_mamba_cache_size: (\d+)",
        "kv_tokens": r"KV Cache is allocated\. #tokens: (\d+)",
        "max_running_requests": r"max_running_requests=(\d+)",
        "max_total_num_tokens": r"max_total_num_tokens=(\d+)",
        "cuda_graph_bs": r"Capture cuda graph bs (\[[\d, ]*\])",
        "cuda_graph_s": r"Capture cuda graph end\. Time elapsed: ([\d.]+) s",
        "cuda_graph_gb": r"Capture cuda graph end\..*?mem usage=([\d.]+) GB",
        "avail_gb_after_graphs": r"Capture cuda graph end\..*?avail mem=([\d.]+) GB",
        "draft_graph_s": r"Capture draft cuda graph end\. Time elapsed: ([\d.]+) s",
        "draft_extend_graph_s": r"Capture draft extend cuda graph end\. Time elapsed: ([\d.]+) s",
        "avail_gb_after_draft_graphs": r"Capture draft extend cuda graph end\..*?avail mem=([\d.]+) GB",
    }
    figures: dict = {}
    for key, pattern in patterns.items():
        found = re.findall(pattern, log)
        if found:
            value = found[-1]
            figures[key] = json.loads(value) if value.startswith("[") else float(value) if "." in value else int(value)
    return figures


def traceback_excerpt(log: str, lines: int = 30) -> str:
    """The last traceback in a log, from its header to the exception line (at most ``lines``)."""
    start = log.rfind("Traceback (most recent call last)")
    if start < 0:
        return ""
    block = log[start:].splitlines()
    for index, line in enumerate(block[1:], 1):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b", line.split("] ")[-1]):
            block = block[: index + 1]
            break
    return "\n".join(block[:2] + ["..."] + block[-(lines - 3):] if len(block) > lines else block)
