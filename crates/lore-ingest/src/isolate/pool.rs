//! The parent's side: a pool of reusable children, each file under a wall-clock watchdog, and what
//! a child's death means for the file.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lore_core::budget::{Budgets, exceeded};
use lore_core::error::{Code, Error, Result};

use super::*;
use crate::detect::FileKind;
use crate::parse::{self, ParseOptions, Parsed};

/// What a parser process keeps of the server's environment: the recogniser's tools are found
/// on the PATH, with its languages and data, and temporary files go where the server's go.
const PASSED_ENV: &[&str] = &["PATH", "TMPDIR", "LORE_OCR_LANGUAGES", "TESSDATA_PREFIX"];

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
pub(crate) enum Death {
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
        self.parse_with(kind, bytes, ParseOptions::default())
    }

    /// [`parse::parse_with`] in a child process.
    pub fn parse_with(&self, kind: FileKind, bytes: &[u8], options: ParseOptions) -> Result<Parsed> {
        if let FileKind::Binary(_) = kind {
            // Refused without reading a byte.
            return parse::parse(kind, bytes);
        }
        self.run(&wire_request(kind, options), bytes)
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
        // A parser needs nothing from the environment but where the text recogniser is and what
        // it reads with, and the server's holds secrets (database URL, bucket keys, the master
        // key). No RUST_BACKTRACE either: a panic's message is enough.
        command.env_clear();
        for name in PASSED_ENV {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
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
pub(crate) struct Stderr {
    pub(super) tail: String,
    pub(super) out_of_memory: bool,
}

/// A child's stderr, logged line by line, read until it closes.
pub(crate) fn stderr_tail(stderr: ChildStderr, pid: u32) -> Stderr {
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

pub(crate) fn classify(timed_out: bool, status: Option<ExitStatus>, stderr: &Stderr) -> Death {
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

pub(crate) struct Worker {
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
pub(crate) fn resident_bytes(pid: u32) -> u64 {
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

impl Drop for ParserPool {
    fn drop(&mut self) {
        self.watchdog.close();
    }
}
