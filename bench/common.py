"""What every benchmark needs: servers in their own process group, pinned or
not, free loopback ports, wrk, peak RSS from /proc, the machine's description.

Only processes this harness started are ever signalled, by their own pid or
process group.
"""

import http.client
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"
BENCH_VENV = ROOT / "var" / "bench-venv"
BENCH_PY = BENCH_VENV / "bin" / "python"
PROJECT_PY = ROOT / ".venv" / "bin" / "python"


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pin(cpus):
    """A `taskset` prefix for the pinned layout, nothing for the shared one."""
    return ["taskset", "-c", cpus] if cpus is not None else []


class Server:
    """One server under test: started fresh per case, stopped with its children."""

    def __init__(self, name, cmd, *, env, cwd=ROOT, cpus=None, probe="/", port=None):
        self.name = name
        self.port = port or free_port()
        self.cmd = pin(cpus) + [c.replace("{port}", str(self.port)) for c in cmd]
        self.env = env
        self.cwd = cwd
        self.probe = probe
        self.proc = None
        self.log_path = VAR / f"{name}.log"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=60):
        VAR.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 — closed in stop()
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, cwd=self.cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        if self.probe is None:  # not a server: nothing to wait for
            return self
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            if http_status("GET", self.port, self.probe) is not None:
                time.sleep(0.3)  # let every worker of a multi-worker server come up
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer on port {self.port}; see {self.log_path}")

    def pids(self):
        return [self.proc.pid, *descendants(self.proc.pid)] if self.proc else []

    def peak_rss_mb(self):
        """Peak resident memory (VmHWM) of each process of this server, in MB."""
        return {pid: peak for pid in self.pids() if (peak := proc_status_mb(pid, "VmHWM")) is not None}

    def stop(self, timeout=10):
        if self.proc is None or self.proc.poll() is not None:
            self._close_log()
            return
        family = self.pids()
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass
        # Workers may outlive their supervisor by a moment; wait for all.
        deadline = time.monotonic() + timeout
        while any(Path(f"/proc/{pid}").exists() for pid in family) and time.monotonic() < deadline:
            time.sleep(0.1)
        self._close_log()

    def _close_log(self):
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None


def http_status(method, port, path, body=None, headers=None, timeout=2):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def descendants(pid):
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def proc_status_mb(pid, field):
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return round(int(match.group(1)) / 1024, 1) if match else None


def wrk(url, *, script, args=(), threads=1, connections=32, duration=10, cpus=None, latency=False):
    """Run wrk; returns requests/s, counts and errors parsed from its report."""
    cmd = pin(cpus) + ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s"]
    if latency:
        cmd.append("--latency")
    cmd += ["-s", str(script), url, "--", *map(str, args)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False).stdout
    result = {"rps": _num(r"Requests/sec:\s+([\d.]+)", out), "requests": int(_num(r"(\d+) requests in", out))}
    result["non2xx"] = int(_num(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(int(g) for g in errors.groups()) if errors else 0
    result["p99_ms"] = _latency(out, "99%")
    result["raw"] = out
    return result


def _num(pattern, text):
    match = re.search(pattern, text)
    return float(match.group(1)) if match else 0.0


def _latency(text, label):
    match = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if not match:
        return None
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def machine():
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = proc_meminfo_gb()
    load = os.getloadavg()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "load_at_start": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        "wrk": shutil.which("wrk") is not None,
    }


def proc_meminfo_gb():
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    match = re.search(r"MemTotal:\s+(\d+) kB", text)
    return round(int(match.group(1)) / 1024 / 1024, 1) if match else None


def package_version(python, name):
    out = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version('{name}'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "?"
