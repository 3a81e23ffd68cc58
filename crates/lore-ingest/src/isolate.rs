//! Parsing in child processes. A file can make a parser ask for more memory than the machine
//! has (a sparse spreadsheet's dense grid, a decompression bomb), spin, or crash; inside the
//! server an allocation failure aborts the whole process, which neither `catch_unwind` nor a
//! timeout can stop. A [`ParserPool`] runs the parsers in reusable children of the same binary
//! (`lore parse-worker`, [`serve_child`]): each sets an address-space limit on itself
//! (`parser_memory_bytes`) and, before each file, a CPU limit (`parser_cpu_seconds` more than
//! it has used so far); the parent kills one that outlives a wall-clock limit. A child that dies
//! fails that one document with `resource_limit_exceeded`, saying which limit (memory, CPU,
//! time) or that the parser crashed, and is replaced by a fresh one.
//!
//! The protocol, over the child's stdin and stdout: a request is two frames, the file's kind
//! (its registry name; `code:<language>` for source code) and the file's bytes; a response is a
//! frame of JSON, `{"error": {"code": ..., "message": ...}}` with a code of the error table, or
//! `{"ok": {"title", "metadata", "locations", "raw_is_text"}}` followed by two frames of UTF-8,
//! the text and the raw text (empty when it is the text). A frame is a little-endian u64 length
//! and that many bytes. The texts travel as they are, not escaped into JSON.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lore_core::budget::{Budgets, exceeded};
use lore_core::error::{Code, Error, Result};
use serde::{Deserialize, Serialize};

use crate::detect::FileKind;
use crate::parse::{self, Parsed};

/// The hidden subcommand of `lore` that runs [`serve_child`].
pub const SUBCOMMAND: &str = "parse-worker";
/// With this variable set to `1` in its environment, a child also takes the test commands
/// (`test:abort`, `test:allocate`, `test:spin`, `test:sleep`, `test:overflow`) that prove each
/// way of dying fails one job and nothing else.
pub const TEST_ENV: &str = "LORE_PARSE_WORKER_TEST";
/// A child is replaced after this many files, or sooner when it holds more than
/// [`RESIDENT_PER_CHILD`] (whatever a parser leaks, or keeps after a large file, goes with it).
/// Replacing costs a process start and the parsers' first-use set-up, which a small file pays
/// many times over: a count alone that is low enough to catch a leak made a corpus of small
/// files several per cent slower.
const JOBS_PER_CHILD: u32 = 20_000;
/// Resident memory past which an idle child is replaced.
const RESIDENT_PER_CHILD: u64 = 512 << 20;
/// A child's memory is read every this many files, and after any file larger than
/// [`LARGE_FILE`].
const RESIDENT_CHECK_EVERY: u32 = 32;
const LARGE_FILE: usize = 4 << 20;
/// Pipe buffers this large let a typical file and its text pass in one write each way, without
/// the reader being woken for every 64 KiB (Linux's default; unprivileged processes may ask for
/// up to `/proc/sys/fs/pipe-max-size`, 1 MiB by default).
const PIPE_BYTES: usize = 1 << 20;
/// Lines of a child's stderr kept to tell why it died.
const STDERR_LINES: usize = 20;

#[derive(Debug)]
enum Response {
    Ok(Parsed),
    Error { code: String, message: String },
}

/// A response's first frame.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Header {
    Ok {
        title: Option<String>,
        metadata: serde_json::Map<String, serde_json::Value>,
        locations: Vec<crate::formats::Location>,
        raw_is_text: bool,
    },
    Error {
        code: String,
        message: String,
    },
}

fn write_response(w: &mut impl Write, response: Response) -> io::Result<()> {
    let json = |h: &Header| serde_json::to_vec(h).map_err(io::Error::other);
    match response {
        Response::Error { code, message } => write_frame(w, &json(&Header::Error { code, message })?),
        Response::Ok(Parsed { title, raw, text, metadata, locations }) => {
            let raw_is_text = raw == text;
            write_frame(w, &json(&Header::Ok { title, metadata, locations, raw_is_text })?)?;
            write_frame(w, text.as_bytes())?;
            write_frame(w, if raw_is_text { b"" } else { raw.as_bytes() })
        }
    }
}

/// The next response; `None` when the stream ends before it.
fn read_response(r: &mut impl Read, max: u64) -> io::Result<Option<Response>> {
    let invalid = |e: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
    let Some(header) = read_frame(r, max)? else { return Ok(None) };
    let header: Header = serde_json::from_slice(&header).map_err(|e| invalid(&e))?;
    let mut text = || -> io::Result<String> {
        let frame = read_frame(r, max)?.ok_or(io::ErrorKind::UnexpectedEof)?;
        String::from_utf8(frame).map_err(|e| invalid(&e))
    };
    Ok(Some(match header {
        Header::Error { code, message } => Response::Error { code, message },
        Header::Ok { title, metadata, locations, raw_is_text } => {
            let text_ = text()?;
            let raw = text()?;
            let raw = if raw_is_text { text_.clone() } else { raw };
            Response::Ok(Parsed { title, raw, text: text_, metadata, locations })
        }
    }))
}

/// How a file's kind travels: its registry name, `code:<language>` for source code.
fn wire_name(kind: FileKind) -> String {
    match kind {
        FileKind::Code(language) => format!("code:{language}"),
        other => other.name().to_string(),
    }
}

fn from_wire(name: &str) -> Option<FileKind> {
    if let Some(language) = name.strip_prefix("code:") {
        return crate::detect::language_named(language).map(FileKind::Code);
    }
    crate::detect::KINDS.iter().find(|(_, n, ..)| *n == name).map(|(k, ..)| *k)
}

fn write_frame(w: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    w.write_all(&(bytes.len() as u64).to_le_bytes())?;
    w.write_all(bytes)
}

/// The next frame; `None` at the end of the stream.
fn read_frame(r: &mut impl Read, max: u64) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 8];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u64::from_le_bytes(len);
    if len > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("a frame of {len} bytes")));
    }
    let mut buf = Vec::with_capacity(len.min(1 << 20) as usize);
    r.take(len).read_to_end(&mut buf)?;
    if buf.len() as u64 != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Some(buf))
}

/// Kills a child whose file takes longer than the wall-clock limit. One thread per pool watches
/// every file in flight (a thread per file cost more than reading a small file).
#[derive(Default)]
struct Watchdog {
    state: Mutex<Watch>,
    changed: Condvar,
}

#[derive(Default)]
struct Watch {
    next: u64,
    started: bool,
    closed: bool,
    armed: Vec<Alarm>,
    /// When the watching thread will next look, while it sleeps: an alarm due later needs no
    /// wake-up, so the usual file (due a whole wall-clock limit from now) costs none.
    wakes_at: Option<Instant>,
    /// How long it sleeps with nothing armed: the last limit armed, so that the next file's
    /// alarm falls due after it wakes anyway.
    idle_wait: Duration,
}

struct Alarm {
    id: u64,
    deadline: Instant,
    child: Arc<Mutex<Child>>,
    timed_out: Arc<AtomicBool>,
}

impl Watchdog {
    fn arm(self: &Arc<Self>, deadline: Instant, child: Arc<Mutex<Child>>, timed_out: Arc<AtomicBool>) -> Result<u64> {
        let mut watch = lock(&self.state);
        if !watch.started {
            let me = self.clone();
            std::thread::Builder::new()
                .name("parse-watchdog".into())
                .spawn(move || me.watch())
                .map_err(|e| Error::internal(format!("cannot start a parser watchdog: {e}")))?;
            watch.started = true;
        }
        watch.next += 1;
        let id = watch.next;
        watch.idle_wait = deadline.saturating_duration_since(Instant::now());
        watch.armed.push(Alarm { id, deadline, child, timed_out });
        let sooner = watch.wakes_at.is_none_or(|wakes| deadline < wakes);
        drop(watch);
        if sooner {
            self.changed.notify_one();
        }
        Ok(id)
    }

    fn disarm(&self, id: u64) {
        lock(&self.state).armed.retain(|a| a.id != id);
    }

    fn close(&self) {
        lock(&self.state).closed = true;
        self.changed.notify_one();
    }

    fn watch(&self) {
        let mut watch = lock(&self.state);
        loop {
            if watch.closed {
                return;
            }
            let now = Instant::now();
            for alarm in watch.armed.iter().filter(|a| a.deadline <= now) {
                alarm.timed_out.store(true, Ordering::SeqCst);
                let _ = lock(&alarm.child).kill();
            }
            watch.armed.retain(|a| a.deadline > now);
            let wait = watch
                .armed
                .iter()
                .map(|a| a.deadline - now)
                .min()
                .unwrap_or(watch.idle_wait.max(Duration::from_millis(10)));
            watch.wakes_at = Some(now + wait);
            watch = self.changed.wait_timeout(watch, wait).unwrap_or_else(PoisonError::into_inner).0;
            watch.wakes_at = None;
        }
    }
}

impl Drop for ParserPool {
    fn drop(&mut self) {
        self.watchdog.close();
    }
}

/// How long a side of the pipe waits awake for the other before sleeping in read().
const SPIN: Duration = Duration::from_micros(250);
/// How long a child waits awake for its next file, while files have been coming this quickly:
/// a parent feeding it file after file saves the child a wake-up per file. A child whose files
/// come further apart (a busy server, between documents) sleeps at once and spends nothing.
const CHILD_SPIN: Duration = Duration::from_millis(2);

/// Returns once `fd` has data or `spin` has passed, without sleeping.
fn spin_until_readable(fd: &impl std::os::fd::AsFd, spin: Duration) {
    use rustix::event::{PollFd, PollFlags, poll};
    let started = std::time::Instant::now();
    loop {
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match poll(&mut fds, Some(&rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 })) {
            Ok(n) if n > 0 => return,
            Ok(_) => {}
            Err(_) => return,
        }
        if started.elapsed() >= spin {
            return;
        }
        std::hint::spin_loop();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ------------------------------------------------------------------------------------ the child

/// The child's side (`lore parse-worker --budgets <json>`): installs the budgets, limits its own
/// memory, then answers requests until its stdin closes. Call it before anything else in the
/// process starts threads or reserves memory.
pub fn serve_child(budgets: Budgets) -> io::Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let memory = budgets.parser_memory_bytes;
    let cpu_seconds = budgets.parser_cpu_seconds;
    lore_core::budget::install(budgets);
    // Responses keep stdout for themselves; whatever else a library prints goes to stderr.
    let protocol = rustix::io::dup(io::stdout())?;
    rustix::stdio::dup2_stdout(io::stderr())?;
    let mut output = BufWriter::new(std::fs::File::from(protocol));
    // Limits can only be lowered below an inherited hard limit, never raised past it.
    let capped = |resource: Resource, value: u64| getrlimit(resource).maximum.map_or(value, |hard| value.min(hard));
    let memory = capped(Resource::As, memory);
    setrlimit(Resource::As, Rlimit { current: Some(memory), maximum: Some(memory) })?;
    // A crash leaves no core file of up to the whole address space behind.
    setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) })?;
    let tests = std::env::var(TEST_ENV).is_ok_and(|v| v == "1");
    let mut input = BufReader::new(io::stdin().lock());
    // The typical wait for the next file (an exponential average, in µs).
    let mut gap_us = 0.0f64;
    loop {
        let waiting = Instant::now();
        if input.buffer().is_empty() && gap_us < CHILD_SPIN.as_micros() as f64 {
            spin_until_readable(input.get_ref(), CHILD_SPIN);
        }
        let Some(kind) = read_frame(&mut input, 1 << 10)? else { return Ok(()) };
        gap_us = 0.8 * gap_us + 0.2 * waiting.elapsed().as_micros() as f64;
        let Some(bytes) = read_frame(&mut input, u64::MAX)? else { return Ok(()) };
        // RLIMIT_CPU counts the process's whole life: this file gets `cpu_seconds` more than
        // the files before it used. Past it the kernel sends SIGXCPU, which ends the process.
        let used = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime).tv_sec.max(0) as u64;
        let limit = capped(Resource::Cpu, used + 1 + cpu_seconds);
        setrlimit(Resource::Cpu, Rlimit { current: Some(limit), maximum: getrlimit(Resource::Cpu).maximum })?;
        let kind = String::from_utf8_lossy(&kind).into_owned();
        let response = match kind.strip_prefix("test:") {
            Some(command) if tests => test_command(command, &bytes),
            _ => handle(&kind, &bytes),
        };
        write_response(&mut output, response)?;
        output.flush()?;
    }
}

fn handle(request: &str, bytes: &[u8]) -> Response {
    // `table:<kind>`: the file's tables as JSON rows, instead of its text.
    let (tables, kind) = match request.strip_prefix("table:") {
        Some(kind) => (true, kind),
        None => (false, request),
    };
    let Some(kind) = from_wire(kind) else {
        return Response::Error { code: Code::Internal.as_str().into(), message: format!("unknown file kind {kind}") };
    };
    let work = || {
        if !tables {
            return parse::parse(kind, bytes);
        }
        let rows = serde_json::to_string(&parse::tables(kind, bytes)?).map_err(Error::internal)?;
        Ok(Parsed { title: None, raw: String::new(), text: rows, metadata: Default::default(), locations: Vec::new() })
    };
    match std::panic::catch_unwind(work) {
        Ok(Ok(parsed)) => Response::Ok(parsed),
        Ok(Err(e)) if e.code == Code::Internal => {
            Response::Error { code: e.code.as_str().into(), message: e.to_string() }
        }
        Ok(Err(e)) => Response::Error { code: e.code.as_str().into(), message: e.message },
        Err(_) => Response::Error { code: Code::Internal.as_str().into(), message: "the parser panicked".into() },
    }
}

/// The ways a parser can go wrong, on demand (only with [`TEST_ENV`] set).
fn test_command(command: &str, body: &[u8]) -> Response {
    match command {
        "abort" => std::process::abort(),
        "allocate" => {
            let n: usize = String::from_utf8_lossy(body).trim().parse().unwrap_or(0);
            let block = vec![1u8; n];
            std::hint::black_box(&block);
            Response::Error { code: Code::CorruptFile.as_str().into(), message: format!("allocated {n} bytes") }
        }
        "spin" => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "sleep" => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        "overflow" => {
            fn deeper(n: u64) -> u64 {
                let frame = std::hint::black_box([n as u8; 4096]);
                if n == 0 { u64::from(frame[0]) } else { deeper(n - 1).wrapping_add(u64::from(frame[1])) }
            }
            let depth = deeper(std::hint::black_box(u64::MAX));
            Response::Error { code: Code::CorruptFile.as_str().into(), message: format!("{depth}") }
        }
        other => Response::Error { code: Code::Internal.as_str().into(), message: format!("no test command {other}") },
    }
}

// ------------------------------------------------------------------------------------ the parent

/// Reusable parser processes; [`ParserPool::parse`] is [`parse::parse`] in one of them.
pub struct ParserPool {
    exe: PathBuf,
    budgets: Budgets,
    wall: Duration,
    size: usize,
    test_commands: bool,
    idle: Mutex<Vec<Worker>>,
    watchdog: Arc<Watchdog>,
}

/// Why a child did not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Death {
    Memory,
    Cpu,
    Time,
    Crash,
}

impl ParserPool {
    /// Children of `exe` (run as `exe parse-worker`), at most `size` kept idle, under the
    /// process's budgets ([`lore_core::budget::budgets`]).
    pub fn new(exe: impl Into<PathBuf>, size: usize) -> ParserPool {
        ParserPool {
            exe: exe.into(),
            budgets: Budgets::default(),
            wall: Duration::ZERO,
            size: size.max(1),
            test_commands: false,
            idle: Mutex::new(Vec::new()),
            watchdog: Arc::new(Watchdog::default()),
        }
        .with_budgets(lore_core::budget::budgets().clone())
    }

    /// Other budgets for the children; the wall-clock limit follows the CPU limit (twice it and
    /// ten seconds), unless set after.
    pub fn with_budgets(mut self, budgets: Budgets) -> Self {
        self.wall = Duration::from_secs(budgets.parser_cpu_seconds.saturating_mul(2).saturating_add(10));
        self.budgets = budgets;
        self
    }

    /// The longest one file may take, from sending it to the answer.
    pub fn with_wall_clock(mut self, wall: Duration) -> Self {
        self.wall = wall;
        self
    }

    /// Children that also take the test commands (see [`TEST_ENV`]).
    pub fn with_test_commands(mut self) -> Self {
        self.test_commands = true;
        self
    }

    /// Children waiting for work.
    pub fn idle(&self) -> usize {
        lock(&self.idle).len()
    }

    /// Process ids of the children waiting for work.
    pub fn idle_pids(&self) -> Vec<u32> {
        lock(&self.idle).iter().map(|w| w.pid).collect()
    }

    /// [`parse::parse`] in a child process.
    pub fn parse(&self, kind: FileKind, bytes: &[u8]) -> Result<Parsed> {
        if let FileKind::Binary(_) = kind {
            // Refused without reading a byte.
            return parse::parse(kind, bytes);
        }
        self.run(&wire_name(kind), bytes)
    }

    /// [`parse::tables`] in a child process: a spreadsheet's rows, under the same budgets.
    pub fn tables(&self, kind: FileKind, bytes: &[u8]) -> Result<Vec<Vec<Vec<String>>>> {
        let parsed = self.run(&format!("table:{}", wire_name(kind)), bytes)?;
        serde_json::from_str(&parsed.text).map_err(|e| Error::internal(format!("parser process: tables: {e}")))
    }

    /// Runs a test command (`abort`, `allocate` with a size as the body, `spin`, `sleep`,
    /// `overflow`) in a child: only children made [`ParserPool::with_test_commands`] take them.
    pub fn run_test_command(&self, command: &str, body: &[u8]) -> Result<Parsed> {
        self.run(&format!("test:{command}"), body)
    }

    fn run(&self, kind: &str, bytes: &[u8]) -> Result<Parsed> {
        let mut worker = loop {
            let idle = lock(&self.idle).pop();
            match idle {
                // One that died while idle (killed from outside) is not this file's fault.
                Some(worker) if !worker.alive() => drop(worker),
                Some(worker) => break worker,
                None => break self.spawn()?,
            }
        };
        let timed_out = Arc::new(AtomicBool::new(false));
        let alarm = self.watchdog.arm(Instant::now() + self.wall, worker.child.clone(), timed_out.clone())?;
        let max_response = self.budgets.parser_memory_bytes.saturating_mul(2).max(1 << 30);
        let answer = worker.send(kind, bytes).and_then(|()| worker.receive(max_response));
        self.watchdog.disarm(alarm);
        let timed_out = timed_out.load(Ordering::SeqCst);
        match answer {
            Ok(response) => {
                worker.jobs += 1;
                if bytes.len() > LARGE_FILE || worker.jobs.is_multiple_of(RESIDENT_CHECK_EVERY) {
                    worker.resident = resident_bytes(worker.pid);
                }
                let outcome = match response {
                    Response::Ok(parsed) => Ok(parsed),
                    Response::Error { code, message } => {
                        Err(match Code::ALL.iter().copied().find(|c| c.as_str() == code) {
                            Some(Code::Internal) | None => Error::internal(format!("parser process: {message}")),
                            Some(code) => Error::new(code, message),
                        })
                    }
                };
                // A child that panicked, or was killed just as it answered, is not reused.
                let healthy = !timed_out && !matches!(&outcome, Err(e) if e.code == Code::Internal);
                if healthy {
                    self.give_back(worker);
                }
                outcome
            }
            Err(e) => {
                let pid = worker.pid;
                let (status, stderr) = worker.bury();
                let death = classify(timed_out, status, &stderr);
                tracing::warn!(pid, ?death, ?status, error = %e, stderr = %stderr.tail, "a parser process died; it is replaced");
                Err(self.refusal(death))
            }
        }
    }

    fn give_back(&self, worker: Worker) {
        if worker.jobs >= JOBS_PER_CHILD || worker.resident > RESIDENT_PER_CHILD {
            return;
        }
        let mut idle = lock(&self.idle);
        if idle.len() < self.size {
            idle.push(worker);
        }
    }

    /// What the document's owner reads: which limit, never the process's internals.
    fn refusal(&self, death: Death) -> Error {
        match death {
            Death::Memory => exceeded(
                Code::ResourceLimitExceeded,
                format!(
                    "reading this document needed more than the {} MiB of memory a parser may use",
                    self.budgets.parser_memory_bytes >> 20
                ),
                "parser-memory-mb",
            ),
            Death::Cpu => exceeded(
                Code::ResourceLimitExceeded,
                format!(
                    "reading this document took more than the {} s of CPU time a parser may use",
                    self.budgets.parser_cpu_seconds
                ),
                "parser-cpu-seconds",
            ),
            Death::Time => exceeded(
                Code::ResourceLimitExceeded,
                format!("reading this document took longer than {} s", self.wall.as_secs()),
                "parser-cpu-seconds",
            ),
            Death::Crash => Error::new(
                Code::ResourceLimitExceeded,
                "the parser crashed while reading this document; the file may be malformed",
            ),
        }
    }

    fn spawn(&self) -> Result<Worker> {
        let failed = |e: &dyn std::fmt::Display| {
            Error::internal(format!("cannot start a parser process ({}): {e}", self.exe.display()))
        };
        let budgets = serde_json::to_string(&self.budgets).map_err(|e| failed(&e))?;
        let mut command = Command::new(&self.exe);
        command
            .arg(SUBCOMMAND)
            .arg("--budgets")
            .arg(budgets)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // A parser needs nothing from the environment, and the server's holds secrets (database
        // URL, bucket keys, the master key). No RUST_BACKTRACE either: a panic's message is enough.
        command.env_clear();
        if self.test_commands {
            command.env(TEST_ENV, "1");
        }
        let mut child = command.spawn().map_err(|e| failed(&e))?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed(&"no pipes"));
        };
        for fd in [std::os::fd::AsFd::as_fd(&stdin), std::os::fd::AsFd::as_fd(&stdout)] {
            // A smaller pipe only costs wake-ups.
            let _ = rustix::pipe::fcntl_setpipe_size(fd, PIPE_BYTES);
        }
        let pid = child.id();
        let stderr = std::thread::Builder::new()
            .name("parse-worker-stderr".into())
            .spawn(move || stderr_tail(stderr, pid))
            .map_err(|e| failed(&e));
        let stderr = match stderr {
            Ok(handle) => handle,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(Worker {
            child: Arc::new(Mutex::new(child)),
            pid,
            stdin: BufWriter::new(stdin),
            stdout: BufReader::new(stdout),
            stderr: Some(stderr),
            jobs: 0,
            resident: 0,
        })
    }
}

/// What a child wrote to stderr: its last lines, and whether it said it ran out of memory.
#[derive(Debug, Default)]
struct Stderr {
    tail: String,
    out_of_memory: bool,
}

/// A child's stderr, logged line by line, read until it closes.
fn stderr_tail(stderr: ChildStderr, pid: u32) -> Stderr {
    let mut reader = BufReader::new(stderr);
    let mut tail = VecDeque::new();
    let mut out_of_memory = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                tracing::warn!(pid, "parser process: {text}");
                // Rust's allocation-failure message, just before it aborts.
                out_of_memory |= text.contains("memory allocation of") && text.contains("failed");
                if tail.len() == STDERR_LINES {
                    tail.pop_front();
                }
                tail.push_back(text);
            }
        }
    }
    Stderr { tail: tail.into_iter().collect::<Vec<_>>().join("\n"), out_of_memory }
}

fn classify(timed_out: bool, status: Option<ExitStatus>, stderr: &Stderr) -> Death {
    use std::os::unix::process::ExitStatusExt;
    if timed_out {
        Death::Time
    } else if status.and_then(|s| s.signal()) == Some(rustix::process::Signal::XCPU.as_raw()) {
        Death::Cpu
    } else if stderr.out_of_memory {
        Death::Memory
    } else {
        Death::Crash
    }
}

struct Worker {
    /// Shared with the watchdog, which kills it when a file takes too long.
    child: Arc<Mutex<Child>>,
    pid: u32,
    stdin: BufWriter<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: Option<JoinHandle<Stderr>>,
    jobs: u32,
    /// Resident bytes when last read ([`resident_bytes`]).
    resident: u64,
}

/// A process's resident memory, from `/proc/<pid>/statm` (0 where it can't be read).
fn resident_bytes(pid: u32) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * rustix::param::page_size() as u64
}

impl Worker {
    fn alive(&self) -> bool {
        matches!(lock(&self.child).try_wait(), Ok(None))
    }

    fn send(&mut self, kind: &str, bytes: &[u8]) -> io::Result<()> {
        write_frame(&mut self.stdin, kind.as_bytes())?;
        write_frame(&mut self.stdin, bytes)?;
        self.stdin.flush()
    }

    fn receive(&mut self, max: u64) -> io::Result<Response> {
        // Most files are small and their answer comes within a fraction of a millisecond: waiting
        // for it awake saves the wake-up (on a virtual machine, a costly one) that sleeping in
        // read() would need. A longer parse finds the worker asleep as before.
        if self.stdout.buffer().is_empty() {
            spin_until_readable(self.stdout.get_ref(), SPIN);
        }
        read_response(&mut self.stdout, max)?.ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
    }

    /// Ends the child (if a garbled answer left it alive) and says how it ended, with the last
    /// lines it wrote to stderr.
    fn bury(mut self) -> (Option<ExitStatus>, Stderr) {
        let status = {
            let mut child = lock(&self.child);
            // A child that already died keeps the status it died with.
            let _ = child.kill();
            child.wait().ok()
        };
        let stderr = self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
        (status, stderr)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let mut child = lock(&self.child);
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
        }
        let _ = child.wait();
        drop(child);
        if let Some(stderr) = self.stderr.take() {
            let _ = stderr.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_travel_by_name() {
        for kind in
            crate::detect::KINDS.iter().map(|(k, ..)| *k).chain([FileKind::Code("rust"), FileKind::Code("text")])
        {
            assert_eq!(from_wire(&wire_name(kind)), Some(kind), "{kind:?}");
        }
        assert_eq!(from_wire("code:klingon"), None);
        assert_eq!(from_wire("nonsense"), None);
    }

    #[test]
    fn frames_and_responses_round_trip() {
        let parsed = parse::parse(FileKind::Xlsx, &crate::samples::xlsx()).expect("xlsx");
        assert!(!parsed.locations.is_empty());
        let text = parse::parse(FileKind::Text, "  标题\r\n\r\n正文。".as_bytes()).expect("text");
        assert_ne!(text.raw, text.text);
        for parsed in [parsed, text] {
            let mut wire = Vec::new();
            write_response(&mut wire, Response::Ok(parsed.clone())).expect("write");
            match read_response(&mut wire.as_slice(), u64::MAX).expect("read") {
                Some(Response::Ok(back)) => assert_eq!(back, parsed),
                other => panic!("{other:?}"),
            }
        }
        let mut wire = Vec::new();
        write_response(&mut wire, Response::Error { code: "too_many_cells".into(), message: "表格太大".into() })
            .expect("write");
        assert!(matches!(read_response(&mut wire.as_slice(), u64::MAX).expect("read"),
            Some(Response::Error { code, message }) if code == "too_many_cells" && message == "表格太大"));
        let mut wire = Vec::new();
        write_frame(&mut wire, b"0123456789").expect("frame");
        assert!(read_frame(&mut &wire[..12], u64::MAX).is_err(), "a cut frame is an error");
        assert!(read_frame(&mut &[][..], u64::MAX).expect("end").is_none());
        assert!(read_frame(&mut wire.as_slice(), 3).is_err(), "too large");
    }

    #[test]
    fn deaths_are_told_apart() {
        use std::os::unix::process::ExitStatusExt;
        let signal = |s: i32| Some(ExitStatus::from_raw(s));
        let quiet = Stderr::default();
        let oom = Stderr { tail: "memory allocation of 549755813888 bytes failed".into(), out_of_memory: true };
        assert_eq!(classify(true, signal(9), &quiet), Death::Time);
        assert_eq!(classify(false, signal(rustix::process::Signal::XCPU.as_raw()), &quiet), Death::Cpu);
        assert_eq!(classify(false, signal(6), &oom), Death::Memory);
        assert_eq!(classify(false, signal(6), &quiet), Death::Crash);
        assert_eq!(classify(false, None, &quiet), Death::Crash);
    }
}
