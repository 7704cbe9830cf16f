"""The ``curlmulti`` command: ``curlmulti fetch`` and ``curlmulti demo``.

Built on ``curlmulti.crawl``.  The progress bar needs tqdm (``pip install
'curlmulti[cli]'``); without it, or when stderr is not a terminal, the
command prints one plain line per URL instead.

Exit status: 0 when every URL was fetched with a 2xx final status, 1 when
any failed, 2 for bad input (a one-line error), 130 when interrupted."""

import argparse
import asyncio
import hashlib
import json
import os
import re
import signal
import sys
import time
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, NoReturn, Optional, Sequence, Set, Tuple, Union
from urllib.parse import urlsplit

from .crawl import Request, Response, Session, normalise_url
from ._sinks import FileSink

EXTRA_HINT = "pip install 'curlmulti[cli]'"
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._%-]+")


class UsageError(Exception):
    """Bad input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="curlmulti", description="Fetch many URLs with libcurl's multi interface.")
    sub = p.add_subparsers(dest="command")
    f = sub.add_parser("fetch", help="fetch URLs given as arguments or in a file, one per line")
    f.add_argument("urls", nargs="*", metavar="URL")
    f.add_argument("-i", "--input", metavar="FILE", help="read URLs from FILE, one per line ('-': stdin)")
    _crawl_options(f)
    f.add_argument("-o", "--output-dir", metavar="DIR", help="keep bodies in DIR (names from the URLs)")
    f.add_argument("--overwrite", action="store_true", help="replace files that already exist in DIR")
    f.add_argument("--report", metavar="FILE", help="write one JSON line per URL to FILE")
    f.add_argument("--resume", action="store_true",
                   help="skip the URLs that the --report FILE of a previous run says were fetched")
    d = sub.add_parser("demo", help="crawl a local server with planted failures, showing progress")
    d.add_argument("--count", type=int, default=3000, help="URLs to crawl (default 3000)")
    d.add_argument("--quiet", action="store_const", dest="progress", const="none",
                   help="no progress and no per-URL lines: the summary only")
    _crawl_options(d, parallel=100, per_host=20)
    return p


def _crawl_options(p: argparse.ArgumentParser, parallel: int = 50, per_host: int = 6) -> None:
    p.add_argument("--parallel", type=int, default=parallel, metavar="N",
                   help="transfers at once (default %d)" % parallel)
    p.add_argument("--per-host", type=int, default=per_host, metavar="N",
                   help="transfers at once per host (default %d)" % per_host)
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="total time for one transfer (default 30)")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS")
    p.add_argument("--retries", type=int, default=2, metavar="N",
                   help="extra attempts after a transient failure (default 2)")
    p.add_argument("--delay", type=float, default=0.0, metavar="SECONDS",
                   help="wait between two requests to the same host (default 0)")
    p.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'")
    p.add_argument("--http2", action="store_true", help="ask for HTTP/2 on plain http:// too")
    p.add_argument("--proxy", metavar="URL")
    p.add_argument("--progress", choices=("auto", "bar", "lines", "none"), default=None,
                   help="auto: a bar on a terminal, plain lines otherwise")


def _check(args: argparse.Namespace) -> None:
    if args.parallel < 1 or args.per_host < 1:
        raise UsageError("--parallel and --per-host must be at least 1")
    if args.timeout <= 0 or args.connect_timeout <= 0:
        raise UsageError("--timeout and --connect-timeout must be positive")
    if args.retries < 0 or args.delay < 0:
        raise UsageError("--retries and --delay cannot be negative")
    headers: List[Tuple[str, str]] = []
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep or not name.strip() or any(c in name for c in " \t\r\n"):
            raise UsageError("bad --header %r (expected 'Name: value')" % h)
        headers.append((name.strip(), value.strip()))
    args.headers = headers


# -- file names ----------------------------------------------------------------------


def name_for(url: str) -> str:
    """A file name for a URL's body: host, port, path and query, with every
    character but ``A-Za-z0-9._%-`` turned into ``_``; long names are cut
    and end with a hash of the URL."""
    parts = urlsplit(url)
    host = parts.hostname or "host"
    if parts.port:
        host = "%s_%d" % (host, parts.port)
    path = parts.path
    if not path or path.endswith("/"):
        path += "index.html"
    name = host + path
    if parts.query:
        name += "?" + parts.query
    name = _NAME_CHARS.sub("_", name.replace("/", "_")).strip("._") or "index.html"
    if len(name) > 180:
        name = name[:160] + "_" + hashlib.sha1(url.encode()).hexdigest()[:16]
    return name


class _Target(object):
    """One URL's file in the output directory: written as NAME.part, renamed
    to NAME when the transfer succeeded, removed otherwise."""

    __slots__ = ("dir", "name", "final", "part", "fd", "claims", "overwrite")

    def __init__(self, out_dir: str, name: str, claims: Dict[str, "_Target"], overwrite: bool) -> None:
        self.dir = out_dir
        self.name = name
        self.final = os.path.join(out_dir, name)
        self.part = self.final + ".part"
        self.fd = -1
        self.claims = claims
        self.overwrite = overwrite

    def open(self) -> FileSink:
        """The request's sink, at each attempt (a retry starts again)."""
        self.close()
        if not self.overwrite and os.path.lexists(self.final):
            raise FileExistsError("%s exists (--overwrite replaces it)" % self.final)
        if self.claims.get(self.name, self) is not self:
            raise FileExistsError("%s is being written for another URL" % self.final)
        self.claims[self.name] = self
        self.fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644)
        return FileSink(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def finish(self, keep: bool) -> Optional[str]:
        """Returns the file's path if kept."""
        self.close()
        if self.claims.get(self.name) is not self:
            return None  # never opened
        del self.claims[self.name]
        try:
            if keep:
                if not self.overwrite and os.path.lexists(self.final):
                    os.unlink(self.part)
                    return None
                os.replace(self.part, self.final)
                return self.final
            os.unlink(self.part)
        except FileNotFoundError:
            pass
        return None


def _prepare_dir(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".curlmulti-probe-%d" % os.getpid())
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError("cannot write to output directory %s: %s" % (path, exc.strerror or exc)) from None


# -- input ---------------------------------------------------------------------------


def _lines(stream: Iterable[str]) -> Iterator[str]:
    for line in stream:
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def _read_done(report: str) -> Set[str]:
    """URLs that a previous report says were fetched."""
    done: Set[str] = set()
    try:
        f = open(report, encoding="utf-8")
    except FileNotFoundError:
        return done
    except OSError as exc:
        raise UsageError("cannot read report %s: %s" % (report, exc.strerror)) from None
    with f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if isinstance(rec, dict) and rec.get("ok") and isinstance(rec.get("url"), str):
                done.add(rec["url"])
    return done


# -- progress ------------------------------------------------------------------------


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1000.0
    return "%d B" % n


class Stats(object):
    def __init__(self, total: Optional[int]) -> None:
        self.total = total
        self.done = 0
        self.ok = 0
        self.failed = 0
        self.bytes = 0
        self.retried = 0
        self.reasons: Dict[str, int] = {}
        self.start = time.monotonic()

    def add(self, response: Response) -> None:
        self.done += 1
        self.bytes += response.size
        if response.attempts > 1:
            self.retried += 1
        if response.ok:
            self.ok += 1
        else:
            self.failed += 1
            reason = _reason(response)
            self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def summary(self) -> List[str]:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        lines = ["%d URLs in %.2f s: %d ok, %d failed; %s (%s/s), %.0f URLs/s; %d needed a retry"
                 % (self.done, elapsed, self.ok, self.failed, _human(self.bytes), _human(self.bytes / elapsed),
                    self.done / elapsed, self.retried)]
        for reason, n in sorted(self.reasons.items(), key=lambda kv: -kv[1]):
            lines.append("  %6d  %s" % (n, reason))
        return lines


def _reason(response: Response) -> str:
    if response.error is not None:
        return "error %d: %s" % (response.error.code, response.error.message)
    return "HTTP %d %s" % (response.status, response.reason)


class _Lines(object):
    """Plain output: one line per URL on stdout."""

    def __init__(self, stats: Stats, out: IO[str]) -> None:
        self.stats = stats
        self.out = out

    def result(self, response: Response, running: int) -> None:
        if response.ok:
            self.out.write("ok   %3d %10d %7.3fs %s\n" % (response.status, response.size,
                                                          response.timings.total if response.timings else 0,
                                                          response.request.url))
        else:
            self.out.write("FAIL %s %s\n" % (_reason(response), response.request.url))

    def close(self) -> None:
        self.out.flush()


class _Quiet(_Lines):
    def result(self, response: Response, running: int) -> None:
        pass


class _Bar(object):
    """A tqdm bar on stderr: done/total, rate, bytes, failures, in flight."""

    def __init__(self, stats: Stats, tqdm: Callable[..., Any], desc: str = "fetch") -> None:
        self.stats = stats
        self.bar = tqdm(total=stats.total, unit="url", desc=desc, dynamic_ncols=True, file=sys.stderr,
                        mininterval=0.1, smoothing=0.1)
        self.next_postfix = 0.0

    def result(self, response: Response, running: int) -> None:
        self.bar.update(1)
        now = time.monotonic()
        if now >= self.next_postfix:
            self.next_postfix = now + 0.2
            s = self.stats
            elapsed = max(now - s.start, 1e-9)
            self.bar.set_postfix_str("%s, %s/s, %d failed, %d in flight"
                                     % (_human(s.bytes), _human(s.bytes / elapsed), s.failed, running),
                                     refresh=False)

    def close(self) -> None:
        self.bar.close()


def _ui(mode: Optional[str], stats: Stats, desc: str) -> Union[_Lines, _Bar]:
    mode = mode or "auto"
    if mode == "none":
        return _Quiet(stats, sys.stdout)
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "lines"
    if mode == "bar":
        try:
            from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]
        except ImportError:
            sys.stderr.write("curlmulti: no progress bar without tqdm (%s); printing lines\n" % EXTRA_HINT)
            return _Lines(stats, sys.stdout)
        return _Bar(stats, tqdm, desc)
    return _Lines(stats, sys.stdout)


# -- the crawl -----------------------------------------------------------------------


def _session(args: argparse.Namespace) -> Session:
    return Session(limit=args.parallel, per_host=args.per_host, timeout=args.timeout,
                   connect_timeout=args.connect_timeout, retries=args.retries, delay=args.delay,
                   headers=args.headers, proxy=args.proxy, http2="always" if args.http2 else True)


async def crawl(args: argparse.Namespace, urls: Iterable[str], total: Optional[int],
                report: Optional[IO[str]] = None, out_dir: Optional[str] = None, overwrite: bool = False,
                desc: str = "fetch", backoff: Optional[float] = None) -> Tuple[Stats, bool]:
    """Fetch ``urls`` (an iterable of str); returns (Stats, interrupted,
    not_fetched) where not_fetched counts the URLs given no result."""
    stats = Stats(total)
    ui = _ui(args.progress, stats, desc)
    claims: Dict[str, _Target] = {}
    targets: Dict[_Target, None] = {}
    null_fd = os.open(os.devnull, os.O_WRONLY)
    null_sink = FileSink(null_fd)
    session = _session(args)
    if backoff is not None:
        session.backoff = backoff

    def requests() -> Iterator[Request]:
        for url in urls:
            if out_dir is not None:
                try:
                    target = _Target(out_dir, name_for(normalise_url(url)), claims, overwrite)
                except ValueError:
                    target = None
                req = Request(url, sink=target.open if target else null_sink, meta=target)
                if target is not None:
                    targets[target] = None
            else:
                req = Request(url, sink=null_sink)
            yield req

    interrupted = False
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    handled = False
    try:
        loop.add_signal_handler(signal.SIGINT, task.cancel)  # type: ignore[union-attr]  # in a task
        handled = True
    except (RuntimeError, ValueError, NotImplementedError):
        pass
    try:
        async with session:
            gen = session.as_completed(requests())
            try:
                async for response in gen:
                    path = None
                    target = response.request.meta
                    if target is not None:
                        targets.pop(target, None)
                        path = target.finish(response.ok)
                    stats.add(response)
                    ui.result(response, session.running)
                    if report is not None:
                        report.write(_report_line(response, path))
            finally:
                await gen.aclose()
    except asyncio.CancelledError:
        interrupted = True
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGINT)
        for target in list(targets):
            target.finish(False)  # partial files of the transfers that were stopped
        ui.close()
        os.close(null_fd)
        if report is not None:
            report.flush()
    return stats, interrupted


def _report_line(response: Response, path: Optional[str]) -> str:
    err = response.error
    return json.dumps({
        "url": response.request.url, "ok": response.ok, "status": response.status,
        "bytes": response.size, "time": round(response.timings.total, 6) if response.timings else None,
        "attempts": response.attempts, "error": err.code if err is not None else None,
        "message": err.message if err is not None else (None if response.ok else "HTTP %d %s" % (
            response.status, response.reason)),
        "file": path,
    }, ensure_ascii=False) + "\n"


def _finish(stats: Stats, interrupted: bool, total: Optional[int]) -> int:
    for line in stats.summary():
        sys.stderr.write(line + "\n")
    if interrupted:
        left = (total - stats.done) if total is not None else None
        sys.stderr.write("curlmulti: interrupted; %s URL(s) not fetched (partial files removed; "
                         "--resume --report FILE continues)\n" % (left if left is not None else "the remaining"))
        return 130
    return 1 if stats.failed else 0


def cmd_fetch(args: argparse.Namespace) -> int:
    _check(args)
    if args.resume and not args.report:
        raise UsageError("--resume needs --report FILE (the report of the previous run)")
    if not args.urls and not args.input:
        raise UsageError("no URL given (URLs as arguments, or -i FILE)")
    for url in args.urls:
        try:
            normalise_url(url)
        except ValueError as exc:
            raise UsageError("malformed URL %r: %s" % (url, exc)) from None
    done = _read_done(args.report) if args.resume else set()
    total: Optional[int] = None
    urls: Iterable[str]
    if args.input:
        if args.input == "-":
            source = sys.stdin
        else:
            try:
                source = open(args.input, encoding="utf-8", errors="surrogateescape")
            except OSError as exc:
                raise UsageError("cannot read %s: %s" % (args.input, exc.strerror)) from None
            total = sum(1 for u in _lines(source) if u not in done)
            source.seek(0)
        urls = [u for u in args.urls if u not in done]
        if total is not None:
            total += len(urls)
        urls = _chain(urls, (u for u in _lines(source) if u not in done))
    else:
        urls = [u for u in args.urls if u not in done]
        total = len(urls)
    if args.output_dir:
        _prepare_dir(args.output_dir)
    report = None
    if args.report:
        try:
            report = open(args.report, "a" if args.resume else "w", encoding="utf-8")
        except OSError as exc:
            raise UsageError("cannot write report %s: %s" % (args.report, exc.strerror)) from None
    try:
        stats, interrupted = asyncio.run(crawl(args, urls, total, report, args.output_dir, args.overwrite))
    finally:
        if report is not None:
            report.close()
    if done:
        sys.stderr.write("%d URL(s) skipped: fetched by a previous run\n" % len(done))
    return _finish(stats, interrupted, total)


def _chain(first: Iterable[str], rest: Iterable[str]) -> Iterator[str]:
    for u in first:
        yield u
    for u in rest:
        yield u


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "fetch":
            return cmd_fetch(args)
        if args.command == "demo":
            _check(args)
            from ._demo import run_demo
            return run_demo(args)
        raise UsageError("a command is needed: fetch or demo (curlmulti --help)")
    except UsageError as exc:
        sys.stderr.write("curlmulti: error: %s\n" % exc)
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("curlmulti: interrupted\n")
        return 130
